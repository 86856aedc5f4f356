"""Lint IAM policy documents with parliament (Duo Labs' IAM linter, its core
auditors): malformed statements, actions or resources that do not exist,
actions whose resource ARNs do not match what the action accepts.

Input: a JSON file {"<name>": <policy document>, ...}. Output: one JSON
line per finding, {"policy", "issue", "severity", "detail"}; the caller
decides which are acceptable.
"""

import json
import sys

from parliament import analyze_policy_string
from parliament import config as parliament_config


def main(path):
    with open(path) as f:
        policies = json.load(f)
    for name, document in policies.items():
        policy = analyze_policy_string(json.dumps(document))
        for finding in policy.findings:
            print(
                json.dumps(
                    {
                        "policy": name,
                        "issue": finding.issue,
                        "severity": parliament_config.get(finding.issue, {}).get("severity", "UNKNOWN"),
                        "detail": finding.detail,
                    },
                    default=str,
                )
            )


if __name__ == "__main__":
    main(sys.argv[1])
