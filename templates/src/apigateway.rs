//! API Gateway's Kinesis routes (SPEC 3.2): each route, the Kinesis action
//! it calls, and the request mapping template (Velocity) that turns the
//! HTTP request into that action's JSON. These are the mappings of AWS's
//! "API Gateway as a Kinesis proxy" tutorial, which the original followed.

/// One route of the `/streams` tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KinesisRoute {
    /// Resource path as API Gateway writes it.
    pub path: &'static str,
    pub http_method: &'static str,
    /// Kinesis API action (`arn:aws:apigateway:<region>:kinesis:action/<action>`).
    pub action: &'static str,
    /// Mapping template for `application/json` requests.
    pub request_template: &'static str,
    /// Manages streams rather than writing records: off on a deployed API
    /// unless `api_gateway.stream_routes`, and IAM-authorized when on.
    pub manages_streams: bool,
}

/// Header in which callers send the deployment's API key (API Gateway's own).
pub const API_KEY_HEADER: &str = "x-api-key";

/// Header API Gateway's HTTP proxy integration adds with the deployment's
/// secret, so that the ingest server on the client machine can refuse
/// requests that did not come through the gateway (`--require-header`).
pub const GATEWAY_SECRET_HEADER: &str = "X-Pipeline-Gateway-Secret";

pub const KINESIS_ROUTES: [KinesisRoute; 6] = [
    KinesisRoute {
        path: "/streams",
        http_method: "GET",
        action: "ListStreams",
        manages_streams: true,
        request_template: include_str!("../files/apigateway/list-streams.vtl"),
    },
    KinesisRoute {
        path: "/streams/{stream-name}",
        http_method: "GET",
        action: "DescribeStream",
        manages_streams: true,
        request_template: include_str!("../files/apigateway/describe-stream.vtl"),
    },
    KinesisRoute {
        path: "/streams/{stream-name}",
        http_method: "POST",
        action: "CreateStream",
        manages_streams: true,
        request_template: include_str!("../files/apigateway/create-stream.vtl"),
    },
    KinesisRoute {
        path: "/streams/{stream-name}",
        http_method: "DELETE",
        action: "DeleteStream",
        manages_streams: true,
        request_template: include_str!("../files/apigateway/delete-stream.vtl"),
    },
    KinesisRoute {
        path: "/streams/{stream-name}/record",
        http_method: "PUT",
        action: "PutRecord",
        manages_streams: false,
        request_template: include_str!("../files/apigateway/put-record.vtl"),
    },
    KinesisRoute {
        path: "/streams/{stream-name}/records",
        http_method: "PUT",
        action: "PutRecords",
        manages_streams: false,
        request_template: include_str!("../files/apigateway/put-records.vtl"),
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_names_its_stream_from_the_path_except_list() {
        for r in KINESIS_ROUTES {
            let uses_path = r.request_template.contains("$input.params('stream-name')");
            assert_eq!(uses_path, r.path.contains("{stream-name}"), "{} {}", r.http_method, r.path);
        }
    }

    #[test]
    fn record_data_is_base64_encoded_as_kinesis_requires() {
        for r in KINESIS_ROUTES.iter().filter(|r| r.action.starts_with("Put")) {
            assert!(r.request_template.contains("$util.base64Encode("), "{}", r.action);
        }
    }
}
