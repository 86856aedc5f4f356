// The server side of MSK IAM for the local test broker (`cargo xtask local
// up --msk-iam`): a SASL/OAUTHBEARER callback handler that accepts a token
// only if it is an MSK IAM token (a SigV4 presigned
// `GET https://kafka.<region>.amazonaws.com/?Action=kafka-cluster:Connect`)
// signed, within its lifetime, with the one key pair given in the
// listener's JAAS options. It recomputes the signature from the secret,
// as AWS does; it shares no code with the client that made the token.
// Besides the configured access key id, every access key id that has a
// policy in `policyDir` (MskIamPolicyAuthorizer) is known: an identity of
// its own, signed with the same secret.
package pipeline.msk;

import java.net.URI;
import java.net.URLDecoder;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import javax.security.auth.callback.Callback;
import javax.security.auth.callback.UnsupportedCallbackException;
import javax.security.auth.login.AppConfigurationEntry;
import org.apache.kafka.common.security.auth.AuthenticateCallbackHandler;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerExtensionsValidatorCallback;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerToken;
import org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallback;

public final class MskIamTokenVerifier implements AuthenticateCallbackHandler {
    private static final DateTimeFormatter AMZ_DATE = DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'");
    private static final long CLOCK_SKEW_SECONDS = 300;
    private static final String EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    private String accessKeyId;
    private String secretAccessKey;
    private String region;
    private java.io.File policyDir;

    @Override
    public void configure(Map<String, ?> configs, String mechanism, List<AppConfigurationEntry> entries) {
        Map<String, ?> options = entries.get(0).getOptions();
        accessKeyId = (String) options.get("accessKeyId");
        secretAccessKey = (String) options.get("secretAccessKey");
        region = (String) options.get("region");
        policyDir = options.get("policyDir") == null ? null : new java.io.File((String) options.get("policyDir"));
        if (accessKeyId == null || secretAccessKey == null || region == null) {
            throw new IllegalArgumentException("JAAS options accessKeyId, secretAccessKey and region are required");
        }
    }

    @Override
    public void close() {}

    @Override
    public void handle(Callback[] callbacks) throws UnsupportedCallbackException {
        for (Callback callback : callbacks) {
            if (callback instanceof OAuthBearerValidatorCallback validator) {
                try {
                    validator.token(verify(validator.tokenValue(), Instant.now()));
                } catch (Exception e) {
                    System.err.println("MSK IAM token refused: " + e.getMessage());
                    validator.error("invalid_token", null, null);
                }
            } else if (callback instanceof OAuthBearerExtensionsValidatorCallback extensions) {
                extensions.inputExtensions().map().keySet().forEach(extensions::valid);
            } else {
                throw new UnsupportedCallbackException(callback);
            }
        }
    }

    private OAuthBearerToken verify(String token, Instant now) throws Exception {
        String url = new String(Base64.getUrlDecoder().decode(token), StandardCharsets.UTF_8);
        URI uri = new URI(url);
        String host = "kafka." + region + ".amazonaws.com";
        require("https".equals(uri.getScheme()) && host.equals(uri.getHost()) && "/".equals(uri.getRawPath()), "not a URL of " + host);
        Map<String, String> query = new LinkedHashMap<>();
        for (String pair : uri.getRawQuery().split("&")) {
            int eq = pair.indexOf('=');
            require(eq > 0, "malformed query");
            query.put(decode(pair.substring(0, eq)), decode(pair.substring(eq + 1)));
        }
        require("kafka-cluster:Connect".equals(query.get("Action")), "Action is not kafka-cluster:Connect");
        require("AWS4-HMAC-SHA256".equals(query.get("X-Amz-Algorithm")), "not SigV4");
        require("host".equals(query.get("X-Amz-SignedHeaders")), "signed headers are not host");
        String[] credential = String.valueOf(query.get("X-Amz-Credential")).split("/");
        require(credential.length == 5, "malformed credential");
        require(accessKeyId.equals(credential[0]) || hasPolicy(credential[0]), "unknown access key " + credential[0]);
        require(region.equals(credential[2]) && "kafka-cluster".equals(credential[3]) && "aws4_request".equals(credential[4]),
                "credential scope is not " + region + "/kafka-cluster");
        String amzDate = String.valueOf(query.get("X-Amz-Date"));
        require(amzDate.startsWith(credential[1]), "date and credential scope differ");
        Instant signedAt = LocalDateTime.parse(amzDate, AMZ_DATE).toInstant(ZoneOffset.UTC);
        long expires = Long.parseLong(String.valueOf(query.get("X-Amz-Expires")));
        require(expires > 0 && expires <= 900, "X-Amz-Expires out of range");
        require(!now.isBefore(signedAt.minusSeconds(CLOCK_SKEW_SECONDS)), "signed in the future");
        require(now.isBefore(signedAt.plusSeconds(expires)), "expired");

        // What was signed: every parameter but the signature and the
        // User-Agent (added after signing), sorted, RFC 3986-encoded.
        TreeMap<String, String> canonical = new TreeMap<>();
        query.forEach((k, v) -> {
            if (!k.equals("X-Amz-Signature") && !k.equals("User-Agent")) {
                canonical.put(encode(k), encode(v));
            }
        });
        StringBuilder canonicalQuery = new StringBuilder();
        canonical.forEach((k, v) -> canonicalQuery.append(canonicalQuery.length() == 0 ? "" : "&").append(k).append('=').append(v));
        String canonicalRequest = "GET\n/\n" + canonicalQuery + "\nhost:" + host + "\n\nhost\n" + EMPTY_SHA256;
        String scope = credential[1] + "/" + region + "/kafka-cluster/aws4_request";
        String stringToSign = "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + sha256Hex(canonicalRequest);
        byte[] key = hmac(("AWS4" + secretAccessKey).getBytes(StandardCharsets.UTF_8), credential[1]);
        key = hmac(key, region);
        key = hmac(key, "kafka-cluster");
        key = hmac(key, "aws4_request");
        String expected = HexFormat.of().formatHex(hmac(key, stringToSign));
        String given = String.valueOf(query.get("X-Amz-Signature"));
        require(MessageDigest.isEqual(expected.getBytes(StandardCharsets.UTF_8), given.getBytes(StandardCharsets.UTF_8)),
                "signature does not match");

        long start = signedAt.toEpochMilli();
        long lifetime = signedAt.plusSeconds(expires).toEpochMilli();
        String principal = credential[0];
        return new OAuthBearerToken() {
            public String value() { return token; }
            public Set<String> scope() { return Set.of(); }
            public long lifetimeMs() { return lifetime; }
            public String principalName() { return principal; }
            public Long startTimeMs() { return start; }
        };
    }

    private boolean hasPolicy(String keyId) {
        return policyDir != null && keyId.matches("[A-Z0-9]{16,128}") && new java.io.File(policyDir, keyId + ".json").isFile();
    }

    private static void require(boolean ok, String why) {
        if (!ok) {
            throw new IllegalArgumentException(why);
        }
    }

    private static String decode(String s) {
        return URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8);
    }

    private static String encode(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20").replace("*", "%2A").replace("%7E", "~");
    }

    private static String sha256Hex(String s) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
    }

    private static byte[] hmac(byte[] key, String data) throws Exception {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        return mac.doFinal(data.getBytes(StandardCharsets.UTF_8));
    }
}
