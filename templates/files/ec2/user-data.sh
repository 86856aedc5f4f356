#!/bin/bash
# User data of the Kafka client machine of deployment {{ uid }} (Amazon Linux 2023).
# Rendered by `cargo xtask render`; provisioning passes it to RunInstances.
{%- if ec2.data_path == "pipeline" %}
# Data path "pipeline": installs the portable `pipeline` binary from the sink
# bucket, checks its SHA-256, and runs `pipeline ingest` on port {{ rest_proxy_port }}
# (the target of API Gateway's {proxy+} integration) and `pipeline sink` as
# systemd units, with MSK IAM through the instance profile. Idempotent: a
# re-run installs the same binary and restarts nothing that runs.
{%- else %}
# Data path "original": installs Java, the Kafka CLI, the MSK IAM auth library
# and the Confluent REST proxy, writes their settings, and runs the proxy on
# port {{ rest_proxy_port }} (the target of API Gateway's {proxy+} integration).
# Idempotent: a re-run skips what is already there.
{%- endif %}
set -euo pipefail
exec > >(tee -a /var/log/pipeline-user-data.log) 2>&1
{% if ec2.data_path == "pipeline" %}
BINARY_SHA256="{{ ec2.pipeline_binary_sha256 }}"
BUCKET="{{ sink_bucket }}"
install -d -m 0755 /etc/pipeline
install -d -m 0700 -o ec2-user /var/lib/pipeline
if ! echo "$BINARY_SHA256  /usr/local/bin/pipeline" | sha256sum -c --status 2>/dev/null; then
  aws s3 cp --only-show-errors "s3://$BUCKET/{{ ec2.pipeline_binary_key | default(value="") }}" /usr/local/bin/pipeline.download
  echo "$BINARY_SHA256  /usr/local/bin/pipeline.download" | sha256sum -c
  install -m 0755 /usr/local/bin/pipeline.download /usr/local/bin/pipeline
  rm -f /usr/local/bin/pipeline.download
fi

# Settings every unit shares: the cluster, MSK IAM (tokens signed with the
# instance profile's credentials), the deployment.
cat > /etc/pipeline/pipeline.env <<'ENV'
KAFKA_BOOTSTRAP_SERVERS={{ kafka.bootstrap_servers }}
PIPELINE_KAFKA_AUTH=msk-iam
PIPELINE_UID={{ uid }}
AWS_REGION={{ region }}
RUST_LOG=info
ENV

# The deployment's three topics (SPEC 1), then the units that use them.
cat > /etc/systemd/system/pipeline-topics.service <<'SERVICE'
[Unit]
Description=Topics of deployment {{ uid }} (pipeline topics create)
After=network-online.target
Wants=network-online.target

[Service]
Type=oneshot
RemainAfterExit=yes
EnvironmentFile=/etc/pipeline/pipeline.env
# Replication 3 on MSK's three zones: MSK's default min.insync.replicas is 2
# there, so at 2 replicas every rolling broker patch stops acks=all writes.
ExecStart=/usr/local/bin/pipeline topics create --partitions 3 --replication {% if kafka.broker_count >= 3 %}3{% else %}{{ kafka.broker_count }}{% endif %} --wait-secs 600
Restart=on-failure
RestartSec=30

[Install]
WantedBy=multi-user.target
SERVICE

# The header API Gateway adds (SPEC 8.7): fetched from the sink bucket, kept
# 0600; requests without it are refused, so the REST port answers only the
# gateway even if the security group were opened.
cat > /etc/systemd/system/pipeline-ingest.service <<'SERVICE'
[Unit]
Description=REST Proxy API of deployment {{ uid }} (pipeline ingest)
After=pipeline-topics.service
Wants=pipeline-topics.service

[Service]
User=ec2-user
EnvironmentFile=/etc/pipeline/pipeline.env
# Every client connection is a descriptor; 1024 is too few for a server.
LimitNOFILE=65536
ExecStartPre=/usr/bin/aws s3 cp --only-show-errors s3://{{ sink_bucket }}/{{ ec2.gateway_secret_key }} /var/lib/pipeline/gateway-secret
ExecStartPre=/usr/bin/chmod 0600 /var/lib/pipeline/gateway-secret
ExecStart=/usr/local/bin/pipeline ingest --listen 0.0.0.0:{{ rest_proxy_port }} --require-header X-Pipeline-Gateway-Secret --require-header-value-file /var/lib/pipeline/gateway-secret
Restart=on-failure
RestartSec=10

[Install]
WantedBy=multi-user.target
SERVICE

cat > /etc/systemd/system/pipeline-sink.service <<'SERVICE'
[Unit]
Description=Kafka to s3://{{ sink_bucket }} of deployment {{ uid }} (pipeline sink)
After=pipeline-topics.service
Wants=pipeline-topics.service

[Service]
User=ec2-user
EnvironmentFile=/etc/pipeline/pipeline.env
# Every client connection is a descriptor; 1024 is too few for a server.
LimitNOFILE=65536
ExecStart=/usr/local/bin/pipeline sink --to s3://{{ sink_bucket }} --flush-size {{ sink.flush_size }} -X group.instance.id={{ uid }}-sink-1
Restart=on-failure
RestartSec=10

[Install]
WantedBy=multi-user.target
SERVICE
{% if ec2.stream_worker %}
cat > /etc/systemd/system/pipeline-stream.service <<'SERVICE'
[Unit]
Description=Kinesis to Delta under s3://{{ sink_bucket }}/delta of deployment {{ uid }} (pipeline stream)
After=network-online.target
Wants=network-online.target

[Service]
User=ec2-user
EnvironmentFile=/etc/pipeline/pipeline.env
# Every client connection is a descriptor; 1024 is too few for a server.
LimitNOFILE=65536
ExecStart=/usr/local/bin/pipeline stream --output s3://{{ sink_bucket }}/delta
Restart=on-failure
RestartSec=10

[Install]
WantedBy=multi-user.target
SERVICE
{% endif %}
systemctl daemon-reload
systemctl enable --now pipeline-topics.service pipeline-ingest.service pipeline-sink.service{% if ec2.stream_worker %} pipeline-stream.service{% endif %}
{% else %}
HOME_DIR=/home/ec2-user
KAFKA_DIR="$HOME_DIR/kafka_2.12-{{ ec2.kafka_version }}"
CONFLUENT_DIR="$HOME_DIR/confluent-{{ ec2.confluent_version }}"
IAM_JAR="aws-msk-iam-auth-{{ ec2.msk_iam_auth_version }}-all.jar"

dnf install -y java-17-amazon-corretto-headless wget

cd "$HOME_DIR"
if [ ! -d "$KAFKA_DIR" ]; then
  wget -q "https://archive.apache.org/dist/kafka/{{ ec2.kafka_version }}/kafka_2.12-{{ ec2.kafka_version }}.tgz"
  tar -xzf "kafka_2.12-{{ ec2.kafka_version }}.tgz"
fi
if [ ! -d "$CONFLUENT_DIR" ]; then
  wget -q "https://packages.confluent.io/archive/{{ ec2.confluent_version | split(pat=".") | slice(end=2) | join(sep=".") }}/confluent-{{ ec2.confluent_version }}.tar.gz"
  tar -xzf "confluent-{{ ec2.confluent_version }}.tar.gz"
fi
# The IAM auth library must be on the classpath of both the CLI and the proxy.
for libs in "$KAFKA_DIR/libs" "$CONFLUENT_DIR/share/java/kafka-rest-lib"; do
  [ -f "$libs/$IAM_JAR" ] || wget -q -O "$libs/$IAM_JAR" \
    "https://github.com/aws/aws-msk-iam-auth/releases/download/v{{ ec2.msk_iam_auth_version }}/$IAM_JAR"
done

cat > "$KAFKA_DIR/bin/client.properties" <<'PROPERTIES'
{{ client_properties }}
PROPERTIES
cat > "$CONFLUENT_DIR/etc/kafka-rest/kafka-rest.properties" <<'PROPERTIES'
{{ kafka_rest_properties }}
PROPERTIES
chown -R ec2-user:ec2-user "$KAFKA_DIR" "$CONFLUENT_DIR"

# The deployment's three topics (SPEC 1); --if-not-exists makes a re-run harmless.
for topic in {{ uid }}.pin {{ uid }}.geo {{ uid }}.user; do
  sudo -u ec2-user "$KAFKA_DIR/bin/kafka-topics.sh" --bootstrap-server "{{ kafka.bootstrap_servers }}" \
    --command-config "$KAFKA_DIR/bin/client.properties" --create --if-not-exists --topic "$topic"
done

cat > /etc/systemd/system/kafka-rest.service <<SERVICE
[Unit]
Description=Confluent REST Proxy for deployment {{ uid }}
After=network-online.target

[Service]
User=ec2-user
ExecStart=$CONFLUENT_DIR/bin/kafka-rest-start $CONFLUENT_DIR/etc/kafka-rest/kafka-rest.properties
Restart=on-failure

[Install]
WantedBy=multi-user.target
SERVICE
systemctl daemon-reload
systemctl enable --now kafka-rest.service
{% endif %}
