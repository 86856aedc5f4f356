// Authorization for the local MSK IAM broker (`cargo xtask local up`), as
// MSK does it with IAM access control: every Kafka operation of a client on
// the client listeners is allowed only if the principal's IAM policy grants
// the MSK action that AWS documents as its equivalent
// (https://docs.aws.amazon.com/msk/latest/developerguide/kafka-actions.html)
// on the resource's ARN, and grants kafka-cluster:Connect on the cluster.
// An explicit Deny wins; no policy, no access.
//
// A principal is the access key id its token was signed with
// (MskIamTokenVerifier); its policy is the IAM policy document in
// `<msk.policy.dir>/<access key id>.json`, read again when the file
// changes. The inter-broker and controller listeners are not authorized.
package pipeline.msk;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Collectors;
import org.apache.kafka.common.Endpoint;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.server.authorizer.AclCreateResult;
import org.apache.kafka.server.authorizer.AclDeleteResult;
import org.apache.kafka.server.authorizer.Action;
import org.apache.kafka.server.authorizer.AuthorizableRequestContext;
import org.apache.kafka.server.authorizer.AuthorizationResult;
import org.apache.kafka.server.authorizer.Authorizer;
import org.apache.kafka.server.authorizer.AuthorizerServerInfo;

public final class MskIamPolicyAuthorizer implements Authorizer {
    private static final ObjectMapper JSON = new ObjectMapper();

    private File policyDir;
    /// `arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>`
    private String clusterArn;
    private Set<String> authorizedListeners;
    private final Map<String, Policy> policies = new ConcurrentHashMap<>();

    private record Policy(long modified, JsonNode document) {}

    @Override
    public void configure(Map<String, ?> configs) {
        policyDir = new File(String.valueOf(configs.get("msk.policy.dir")));
        clusterArn = String.valueOf(configs.get("msk.cluster.arn"));
        authorizedListeners = Set.of(String.valueOf(configs.get("msk.authorized.listeners")).split(","));
        if (!clusterArn.startsWith("arn:aws:kafka:") || !clusterArn.contains(":cluster/")) {
            throw new IllegalArgumentException("msk.cluster.arn must be a cluster ARN, not " + clusterArn);
        }
    }

    @Override
    public Map<Endpoint, ? extends CompletionStage<Void>> start(AuthorizerServerInfo info) {
        return info.endpoints().stream().collect(Collectors.toMap(e -> e, e -> CompletableFuture.completedFuture(null)));
    }

    @Override
    public List<AuthorizationResult> authorize(AuthorizableRequestContext context, List<Action> actions) {
        List<AuthorizationResult> results = new ArrayList<>(actions.size());
        for (Action action : actions) {
            results.add(authorize(context, action.operation(), action.resourcePattern().resourceType(),
                    action.resourcePattern().name(), action.logIfDenied()));
        }
        return results;
    }

    /// Kafka asks this where an operation on any resource of a type would
    /// do: an idempotent producer without IDEMPOTENT_WRITE on the cluster
    /// is let through by WRITE on some topic. MSK documents no such
    /// fallback (WriteDataIdempotently is required), so under IAM it is
    /// refused.
    @Override
    public AuthorizationResult authorizeByResourceType(AuthorizableRequestContext context, AclOperation op, ResourceType type) {
        return authorizedListeners.contains(context.listenerName()) ? AuthorizationResult.DENIED : AuthorizationResult.ALLOWED;
    }

    private AuthorizationResult authorize(AuthorizableRequestContext context, AclOperation op, ResourceType type, String name,
            boolean log) {
        if (!authorizedListeners.contains(context.listenerName())) {
            return AuthorizationResult.ALLOWED;
        }
        String principal = context.principal().getName();
        String action = mskAction(op, type);
        String resource = resourceArn(type, name);
        JsonNode policy = policy(principal);
        boolean allowed = action != null && resource != null && policy != null
                && allows(policy, "kafka-cluster:Connect", clusterArn)
                && allows(policy, "kafka-cluster:" + action, resource);
        // Kafka asks for IDEMPOTENT_WRITE without logging a denial (it then
        // tries WRITE on any topic); under IAM that denial is the answer.
        if (!allowed && (log || op == AclOperation.IDEMPOTENT_WRITE)) {
            System.err.println("MSK IAM authorization DENIED: " + principal + " may not " + (action == null ? op + " " + type
                    : "kafka-cluster:" + action + " on " + resource) + (policy == null ? " (no policy)" : ""));
        }
        return allowed ? AuthorizationResult.ALLOWED : AuthorizationResult.DENIED;
    }

    /// The MSK action AWS documents as equivalent to a Kafka ACL; null
    /// where IAM access control has none.
    static String mskAction(AclOperation op, ResourceType type) {
        switch (type) {
            case CLUSTER:
                switch (op) {
                    case DESCRIBE: return "DescribeCluster";
                    case ALTER: return "AlterCluster";
                    case DESCRIBE_CONFIGS: return "DescribeClusterDynamicConfiguration";
                    case ALTER_CONFIGS: return "AlterClusterDynamicConfiguration";
                    case IDEMPOTENT_WRITE: return "WriteDataIdempotently";
                    case CREATE: return "CreateTopic";
                    default: return null;
                }
            case TOPIC:
                switch (op) {
                    case DESCRIBE: return "DescribeTopic";
                    case CREATE: return "CreateTopic";
                    case ALTER: return "AlterTopic";
                    case DELETE: return "DeleteTopic";
                    case READ: return "ReadData";
                    case WRITE: return "WriteData";
                    case DESCRIBE_CONFIGS: return "DescribeTopicDynamicConfiguration";
                    case ALTER_CONFIGS: return "AlterTopicDynamicConfiguration";
                    default: return null;
                }
            case GROUP:
                switch (op) {
                    case DESCRIBE: return "DescribeGroup";
                    case READ: return "AlterGroup";
                    case DELETE: return "DeleteGroup";
                    default: return null;
                }
            case TRANSACTIONAL_ID:
                switch (op) {
                    case DESCRIBE: return "DescribeTransactionalId";
                    case WRITE: return "AlterTransactionalId";
                    default: return null;
                }
            default:
                return null;
        }
    }

    /// The resource's ARN: the cluster's, or `<kind>/<cluster name>/<uuid>/<name>`.
    private String resourceArn(ResourceType type, String name) {
        String kind;
        switch (type) {
            case CLUSTER: return clusterArn;
            case TOPIC: kind = "topic"; break;
            case GROUP: kind = "group"; break;
            case TRANSACTIONAL_ID: kind = "transactional-id"; break;
            default: return null;
        }
        return clusterArn.replace(":cluster/", ":" + kind + "/") + "/" + name;
    }

    private JsonNode policy(String principal) {
        File file = new File(policyDir, principal + ".json");
        long modified = file.lastModified();
        if (modified == 0L) {
            return null;
        }
        Policy cached = policies.get(principal);
        if (cached != null && cached.modified() == modified) {
            return cached.document();
        }
        try {
            JsonNode document = JSON.readTree(file);
            policies.put(principal, new Policy(modified, document));
            return document;
        } catch (Exception e) {
            System.err.println("MSK IAM policy " + file + " unreadable: " + e.getMessage());
            return null;
        }
    }

    /// IAM's evaluation for one action on one resource: an explicit Deny
    /// wins, then any Allow; otherwise the implicit deny.
    static boolean allows(JsonNode policy, String action, String resource) {
        boolean allowed = false;
        for (JsonNode statement : policy.path("Statement")) {
            if (matchesAny(statement.path("Action"), action, true) && matchesAny(statement.path("Resource"), resource, false)) {
                String effect = statement.path("Effect").asText();
                if ("Deny".equals(effect)) {
                    return false;
                }
                allowed |= "Allow".equals(effect);
            }
        }
        return allowed;
    }

    private static boolean matchesAny(JsonNode patterns, String value, boolean ignoreCase) {
        if (patterns.isTextual()) {
            return matches(patterns.asText(), value, ignoreCase);
        }
        for (JsonNode p : patterns) {
            if (matches(p.asText(), value, ignoreCase)) {
                return true;
            }
        }
        return false;
    }

    /// IAM's wildcards: `*` any run of characters (`/` included), `?` one.
    static boolean matches(String pattern, String value, boolean ignoreCase) {
        if (ignoreCase) {
            pattern = pattern.toLowerCase();
            value = value.toLowerCase();
        }
        int p = 0, v = 0, star = -1, mark = 0;
        while (v < value.length()) {
            if (p < pattern.length() && (pattern.charAt(p) == '?' || pattern.charAt(p) == value.charAt(v))) {
                p++;
                v++;
            } else if (p < pattern.length() && pattern.charAt(p) == '*') {
                star = p++;
                mark = v;
            } else if (star >= 0) {
                p = star + 1;
                v = ++mark;
            } else {
                return false;
            }
        }
        while (p < pattern.length() && pattern.charAt(p) == '*') {
            p++;
        }
        return p == pattern.length();
    }

    @Override
    public List<? extends CompletionStage<AclCreateResult>> createAcls(AuthorizableRequestContext context, List<AclBinding> bindings) {
        return bindings.stream()
                .map(b -> CompletableFuture.completedFuture(new AclCreateResult(
                        new UnsupportedVersionException("ACLs do not apply under IAM access control"))))
                .collect(Collectors.toList());
    }

    @Override
    public List<? extends CompletionStage<AclDeleteResult>> deleteAcls(AuthorizableRequestContext context, List<AclBindingFilter> filters) {
        return filters.stream()
                .map(f -> CompletableFuture.completedFuture(new AclDeleteResult(
                        new UnsupportedVersionException("ACLs do not apply under IAM access control"))))
                .collect(Collectors.toList());
    }

    @Override
    public Iterable<AclBinding> acls(AclBindingFilter filter) {
        return List.of();
    }

    @Override
    public void close() {}
}
