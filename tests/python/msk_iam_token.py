"""AWS's own MSK IAM signer (aws-msk-iam-sasl-signer-python) on fixed input.

Reads JSON cases from stdin: {"access_key", "secret_key", "session_token"
(or null), "region", "epoch_seconds"}; prints one JSON line per case with the
token, its expiry in ms and the User-Agent the signer appends. The clock is
fixed the way botocore reads it (botocore.auth.get_current_datetime).
"""

import datetime
import json
import sys
from unittest import mock

import botocore.auth
from botocore.credentials import CredentialProvider, Credentials
from aws_msk_iam_sasl_signer import MSKAuthTokenProvider


class Fixed(CredentialProvider):
    def __init__(self, case):
        super().__init__()
        self.case = case

    def load(self):
        c = self.case
        return Credentials(c["access_key"], c["secret_key"], c.get("session_token"))


for line in sys.stdin:
    case = json.loads(line)
    # botocore wants a naive UTC datetime.
    at = datetime.datetime.fromtimestamp(case["epoch_seconds"], datetime.timezone.utc).replace(tzinfo=None)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=at):
        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token_from_credentials_provider(case["region"], Fixed(case))
    print(json.dumps({"token": token, "expiry_ms": expiry_ms, "user_agent": MSKAuthTokenProvider.__get_user_agent__()}), flush=True)
