#!/bin/bash
# User data of the Kafka client machine of deployment {{ uid }} (Amazon Linux 2023).
# Rendered by `cargo xtask render`; provisioning passes it to RunInstances.
# Installs Java, the Kafka CLI, the MSK IAM auth library and the Confluent
# REST proxy, writes their settings, and runs the proxy on port {{ rest_proxy_port }}
# (the target of API Gateway's {proxy+} integration). Idempotent: a re-run
# skips what is already there.
set -euo pipefail
exec > >(tee -a /var/log/pipeline-user-data.log) 2>&1

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
