//! The local stack: a real Apache Kafka broker (KRaft, single node), a
//! moto server for the AWS APIs and a MariaDB server holding the source
//! tables, all on 127.0.0.1, with pid files, data and logs under `.local/`;
//! with `--localstack`, LocalStack as a second local AWS beside moto; with
//! `--msk-iam`, a second broker whose only client listener takes MSK IAM
//! tokens (SASL/OAUTHBEARER), checked against a test key pair.
//! `up` is idempotent: a healthy running service is reused.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::install::{self, KAFKA_VERSION, LOCALSTACK_REQUIREMENTS, MOTO_REQUIREMENT};
use crate::paths;

pub const KAFKA_PORT: u16 = 19092;
pub const KAFKA_CONTROLLER_PORT: u16 = 19093;
/// The MSK IAM broker: its SASL_PLAINTEXT/OAUTHBEARER client listener, its
/// controller, the plain listener it talks to itself on, and its
/// SASL_SSL/OAUTHBEARER client listener (MSK's 9098).
pub const MSK_IAM_KAFKA_PORT: u16 = 19094;
const MSK_IAM_CONTROLLER_PORT: u16 = 19095;
const MSK_IAM_INTERNAL_PORT: u16 = 19096;
pub const MSK_IAM_TLS_PORT: u16 = 19097;
/// The one key pair the MSK IAM broker accepts tokens of, and the region
/// they must be for. Made up, like moto's: they open nothing anywhere else.
pub const MSK_IAM_ACCESS_KEY_ID: &str = "AKIDPIPELINELOCALMSK";
pub const MSK_IAM_SECRET_ACCESS_KEY: &str = "local-msk-iam-broker-test-secret";
pub const MSK_IAM_REGION: &str = "us-east-1";
/// Who the MSK IAM broker is, for authorization: the cluster of a
/// deployment with this uid (`<uid>-msk-cluster`) in this account, so that
/// a deployment's rendered policies name it.
pub const MSK_IAM_ACCOUNT: &str = "000000000000";
pub const MSK_IAM_CLUSTER_UID: &str = "localmsk";
const MSK_IAM_CLUSTER_UUID: &str = "6f1c2a9e-0d4b-4c1e-9a7e-3b5d8f0c2e41-2";
pub const MOTO_PORT: u16 = 5000;
pub const MARIADB_PORT: u16 = 13306;
/// LocalStack's gateway (its usual port).
pub const LOCALSTACK_PORT: u16 = 4566;
/// What LocalStack runs: the services its free edition has that the
/// pipeline uses (no MSK, MSK Connect or MWAA there).
const LOCALSTACK_SERVICES: &str = "s3,sts,iam,ec2,apigateway,kinesis,resourcegroupstaggingapi,secretsmanager";
/// Database and account the local MariaDB is started with: loopback only,
/// a throwaway password like moto's dummy keys.
const MARIADB_DATABASE: &str = "pinterest";
const MARIADB_USER: &str = "pipeline";
const MARIADB_PASSWORD: &str = "pipeline";

pub fn kafka_bootstrap() -> String {
    format!("127.0.0.1:{KAFKA_PORT}")
}

pub fn msk_iam_bootstrap() -> String {
    format!("127.0.0.1:{MSK_IAM_KAFKA_PORT}")
}

/// The TLS listener by the name its certificate carries, as clients name
/// MSK's brokers.
pub fn msk_iam_tls_bootstrap() -> String {
    format!("localhost:{MSK_IAM_TLS_PORT}")
}

/// Where the MSK IAM broker reads each principal's IAM policy
/// (`<access key id>.json`); a test adds identities by writing files here.
pub fn msk_iam_policy_dir() -> std::path::PathBuf {
    paths::local_dir().join("kafka-msk-iam/policies")
}

pub fn moto_endpoint() -> String {
    format!("http://127.0.0.1:{MOTO_PORT}")
}

pub fn localstack_endpoint() -> String {
    format!("http://127.0.0.1:{LOCALSTACK_PORT}")
}

/// URL of the local source database, as `pipeline emulate --source` takes it.
pub fn mysql_url() -> String {
    format!("mysql://{MARIADB_USER}:{MARIADB_PASSWORD}@127.0.0.1:{MARIADB_PORT}/{MARIADB_DATABASE}")
}

/// Environment that points clients at the local stack. The AWS keys are
/// moto's dummy values, never real credentials.
pub fn client_env() -> Vec<(&'static str, String)> {
    vec![
        ("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap()),
        ("AWS_ENDPOINT_URL", moto_endpoint()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("PIPELINE_MYSQL_URL", mysql_url()),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Kafka,
    Moto,
    Mariadb,
    Localstack,
    KafkaMskIam,
}

impl Service {
    /// What `up` starts by default.
    pub const DEFAULT: [Service; 3] = [Service::Kafka, Service::Moto, Service::Mariadb];
    pub const ALL: [Service; 5] = [Service::Kafka, Service::Moto, Service::Mariadb, Service::Localstack, Service::KafkaMskIam];

    pub fn name(self) -> &'static str {
        match self {
            Service::Kafka => "kafka",
            Service::Moto => "moto",
            Service::Mariadb => "mariadb",
            Service::Localstack => "localstack",
            Service::KafkaMskIam => "kafka-msk-iam",
        }
    }

    /// Started only when asked for (`local up --localstack`, `--msk-iam`).
    fn optional(self) -> bool {
        matches!(self, Service::Localstack | Service::KafkaMskIam)
    }

    fn port(self) -> u16 {
        match self {
            Service::Kafka => KAFKA_PORT,
            Service::Moto => MOTO_PORT,
            Service::Mariadb => MARIADB_PORT,
            Service::Localstack => LOCALSTACK_PORT,
            Service::KafkaMskIam => MSK_IAM_KAFKA_PORT,
        }
    }

    fn address(self) -> String {
        match self {
            Service::Kafka => kafka_bootstrap(),
            Service::Moto => moto_endpoint(),
            Service::Mariadb => format!("127.0.0.1:{MARIADB_PORT}"),
            Service::Localstack => localstack_endpoint(),
            Service::KafkaMskIam => msk_iam_bootstrap(),
        }
    }

    fn pid_file(self) -> PathBuf {
        paths::run_dir().join(format!("{}.pid", self.name()))
    }

    pub fn log_file(self) -> PathBuf {
        paths::log_dir().join(format!("{}.log", self.name()))
    }

    /// A word of the process's command line, so a recycled pid is not
    /// mistaken for our service.
    fn cmdline_marker(self) -> &'static str {
        match self {
            Service::Kafka => "kafka.Kafka",
            Service::Moto => "moto_server",
            Service::Mariadb => "mariadbd",
            Service::Localstack => "localstack.runtime.main",
            // Both brokers run kafka.Kafka; this one's properties file is
            // under its own directory.
            Service::KafkaMskIam => "kafka-msk-iam/server.properties",
        }
    }

    /// Pid of our running process, if any.
    pub fn pid(self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(self.pid_file()).ok()?.trim().parse().ok()?;
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let cmdline = String::from_utf8_lossy(&cmdline);
        cmdline.contains(self.cmdline_marker()).then_some(pid)
    }

    /// Answers on its port the way the service should.
    pub fn healthy(self) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port()));
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
            return false;
        };
        match self {
            // An open broker port after start-up means the broker has
            // finished recovery; clients retry metadata anyway. An MSK IAM
            // broker started before it had a TLS listener is not this one.
            Service::Kafka => true,
            Service::KafkaMskIam => {
                TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], MSK_IAM_TLS_PORT)), Duration::from_millis(500)).is_ok()
            }
            Service::Moto | Service::Localstack => {
                let path = if self == Service::Moto { "/moto-api/" } else { "/_localstack/health" };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n", self.port());
                if stream.write_all(req.as_bytes()).is_err() {
                    return false;
                }
                let mut buf = [0u8; 12];
                stream.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") && &buf[9..12] == b"200"
            }
            // The server speaks first: a packet header (3 length bytes,
            // sequence 0) then protocol version 10. Sent only once start-up,
            // including the init file, is over.
            Service::Mariadb => {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 5];
                stream.read_exact(&mut buf).is_ok() && buf[3] == 0 && buf[4] == 10
            }
        }
    }

    fn port_taken(self) -> bool {
        TcpStream::connect_timeout(&SocketAddr::from(([127, 0, 0, 1], self.port())), Duration::from_millis(300)).is_ok()
    }

    /// The command that runs it, after installing what it needs (jars,
    /// venvs, a data directory): the slow part of a first start.
    fn command(self) -> Result<Command> {
        Ok(match self {
            Service::Kafka => kafka_command()?,
            Service::KafkaMskIam => msk_iam_kafka_command()?,
            Service::Moto => {
                let bin = install::python_venv("moto", &[MOTO_REQUIREMENT])?;
                let mut c = Command::new(bin.join("moto_server"));
                c.args(["-H", "127.0.0.1", "-p", &self.port().to_string()]);
                c
            }
            Service::Mariadb => mariadb_command()?,
            Service::Localstack => localstack_command()?,
        })
    }

    /// Prepare and spawn the process, detached from our terminal.
    fn spawn(self) -> Result<std::process::Child> {
        let mut cmd = self.command()?;
        std::fs::create_dir_all(paths::log_dir())?;
        std::fs::create_dir_all(paths::run_dir())?;
        let log = std::fs::File::create(self.log_file())?;
        // Own process group: Ctrl-C in the terminal does not reach it, and
        // no pipe of ours stays open in it (CI waits for those).
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("cannot start {}", self.name()))?;
        std::fs::write(self.pid_file(), child.id().to_string())?;
        Ok(child)
    }
}

/// LocalStack without Docker, on 127.0.0.1 only, everything it writes under
/// `.local/localstack/`. Its default gateway server binds 0.0.0.0 whatever
/// GATEWAY_LISTEN says; hypercorn binds what it is told. Its own DNS server
/// (0.0.0.0:53) is off. It takes this machine for a container when
/// /.dockerenv exists, and would then write under /var/lib/localstack.
fn localstack_command() -> Result<Command> {
    let python = install::python313()?;
    let bin = install::python_venv_with(&python, "localstack", LOCALSTACK_REQUIREMENTS)?;
    let dir = paths::local_dir().join("localstack");
    let (root, tmp) = (dir.join("filesystem"), dir.join("tmp"));
    std::fs::create_dir_all(&root)?;
    std::fs::create_dir_all(&tmp)?;
    let loopback = dir.join("node-loopback.js");
    std::fs::write(&loopback, include_str!("../files/node-loopback.js"))?;
    let mut c = Command::new(bin.join("python"));
    c.args(["-m", "localstack.runtime.main"])
        .current_dir(&dir)
        .env("OVERRIDE_IN_DOCKER", "0")
        .env("FILESYSTEM_ROOT", &root)
        .env("TMPDIR", &tmp)
        .env("GATEWAY_LISTEN", format!("127.0.0.1:{LOCALSTACK_PORT}"))
        .env("GATEWAY_SERVER", "hypercorn")
        .env("LOCALSTACK_HOST", format!("127.0.0.1:{LOCALSTACK_PORT}"))
        .env("DNS_ADDRESS", "0")
        .env("SERVICES", LOCALSTACK_SERVICES)
        .env("SKIP_SSL_CERT_DOWNLOAD", "1")
        .env("DISABLE_EVENTS", "1")
        // Kinesis Mock delays stream creation like AWS (and then refuses a
        // sixth concurrent CreateStream); moto does not. Same as moto here.
        .env("KINESIS_LATENCY", "0")
        .env("NODE_OPTIONS", format!("--require {}", loopback.display()));
    Ok(c)
}

fn kafka_command() -> Result<Command> {
    let listeners = format!(
        "listeners=PLAINTEXT://127.0.0.1:{KAFKA_PORT},CONTROLLER://127.0.0.1:{KAFKA_CONTROLLER_PORT}\n\
         advertised.listeners=PLAINTEXT://127.0.0.1:{KAFKA_PORT}\n\
         controller.quorum.voters=1@127.0.0.1:{KAFKA_CONTROLLER_PORT}\n\
         listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT\n"
    );
    kafka_broker_command("kafka", &listeners, None)
}

/// The MSK IAM broker: clients reach it only on a SASL_PLAINTEXT listener
/// and a SASL_SSL one (certificate: [`crate::msk_tls`]), whose OAUTHBEARER
/// tokens `MskIamTokenVerifier` checks as MSK would,
/// against [`MSK_IAM_ACCESS_KEY_ID`] and [`MSK_IAM_SECRET_ACCESS_KEY`], and
/// whose every operation `MskIamPolicyAuthorizer` authorizes as MSK would,
/// against the principal's IAM policy in [`msk_iam_policy_dir`] (both in
/// xtask/files/, compiled here with the JDK's javac). The configured key's
/// policy allows every MSK action: an administrator's.
fn msk_iam_kafka_command() -> Result<Command> {
    let libs = install::kafka_libs()?;
    let dir = paths::local_dir().join("kafka-msk-iam");
    let classes = dir.join("classes");
    let sources = [
        ("MskIamTokenVerifier", include_str!("../files/MskIamTokenVerifier.java")),
        ("MskIamPolicyAuthorizer", include_str!("../files/MskIamPolicyAuthorizer.java")),
    ];
    std::fs::create_dir_all(dir.join("src"))?;
    let stale = sources.iter().any(|(name, text)| {
        std::fs::read_to_string(dir.join(format!("src/{name}.java"))).ok().as_deref() != Some(*text)
            || !classes.join(format!("pipeline/msk/{name}.class")).exists()
    });
    if stale {
        let mut javac = Command::new("javac");
        javac.arg("-cp").arg(format!("{}/*", libs.display())).arg("-d").arg(&classes);
        for (name, text) in sources {
            let src = dir.join(format!("src/{name}.java"));
            std::fs::write(&src, text)?;
            javac.arg(src);
        }
        install::run_logged(&mut javac, &paths::log_dir().join("kafka-msk-iam-javac.log"))
            .context("compiling the MSK IAM verifier and authorizer (needs a JDK: sudo apt-get install -y openjdk-17-jdk-headless)")?;
    }
    let policies = msk_iam_policy_dir();
    std::fs::create_dir_all(&policies)?;
    std::fs::write(
        policies.join(format!("{MSK_IAM_ACCESS_KEY_ID}.json")),
        r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kafka-cluster:*", "Resource": "*"}]}"#,
    )?;
    let keystore = crate::msk_tls::broker_keystore()?;
    // Both client listeners authenticate and authorize alike.
    let sasl = |listener: &str| {
        format!(
            "listener.name.{listener}.sasl.enabled.mechanisms=OAUTHBEARER\n\
             listener.name.{listener}.oauthbearer.sasl.server.callback.handler.class=pipeline.msk.MskIamTokenVerifier\n\
             listener.name.{listener}.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
             accessKeyId=\"{MSK_IAM_ACCESS_KEY_ID}\" secretAccessKey=\"{MSK_IAM_SECRET_ACCESS_KEY}\" region=\"{MSK_IAM_REGION}\" \
             policyDir=\"{policy_dir}\" unsecuredLoginStringClaim_sub=\"broker\";\n",
            policy_dir = policies.display()
        )
    };
    let listeners = format!(
        "listeners=CLIENT://127.0.0.1:{MSK_IAM_KAFKA_PORT},CLIENT_TLS://127.0.0.1:{MSK_IAM_TLS_PORT},INTERNAL://127.0.0.1:{MSK_IAM_INTERNAL_PORT},CONTROLLER://127.0.0.1:{MSK_IAM_CONTROLLER_PORT}\n\
         advertised.listeners=CLIENT://127.0.0.1:{MSK_IAM_KAFKA_PORT},CLIENT_TLS://{tls_bootstrap},INTERNAL://127.0.0.1:{MSK_IAM_INTERNAL_PORT}\n\
         controller.quorum.voters=1@127.0.0.1:{MSK_IAM_CONTROLLER_PORT}\n\
         listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CLIENT_TLS:SASL_SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT\n\
         inter.broker.listener.name=INTERNAL\n\
         {client}{client_tls}\
         listener.name.client_tls.ssl.keystore.type=PEM\n\
         listener.name.client_tls.ssl.keystore.location={keystore}\n\
         authorizer.class.name=pipeline.msk.MskIamPolicyAuthorizer\n\
         msk.authorized.listeners=CLIENT,CLIENT_TLS\n\
         msk.policy.dir={policy_dir}\n\
         msk.cluster.arn=arn:aws:kafka:{MSK_IAM_REGION}:{MSK_IAM_ACCOUNT}:cluster/{MSK_IAM_CLUSTER_UID}-msk-cluster/{MSK_IAM_CLUSTER_UUID}\n",
        tls_bootstrap = msk_iam_tls_bootstrap(),
        client = sasl("client"),
        client_tls = sasl("client_tls"),
        keystore = keystore.display(),
        policy_dir = policies.display()
    );
    kafka_broker_command("kafka-msk-iam", &listeners, Some(&classes))
}

/// A single-node KRaft broker under `.local/<name>/` with these listeners,
/// optionally with more classes on its classpath.
fn kafka_broker_command(name: &str, listeners: &str, extra_classes: Option<&std::path::Path>) -> Result<Command> {
    let libs = install::kafka_libs()?;
    let dir = paths::local_dir().join(name);
    let data = dir.join("data");
    std::fs::create_dir_all(&dir)?;
    let props = dir.join("server.properties");
    std::fs::write(
        &props,
        format!(
            "# Written by cargo xtask local up; edits are overwritten.\n\
             process.roles=broker,controller\n\
             node.id=1\n\
             {listeners}\
             controller.listener.names=CONTROLLER\n\
             log.dirs={data}\n\
             num.partitions=3\n\
             # As on MSK: topics are created on purpose, never by a typo.\n\
             auto.create.topics.enable=false\n\
             offsets.topic.replication.factor=1\n\
             offsets.topic.num.partitions=3\n\
             transaction.state.log.replication.factor=1\n\
             transaction.state.log.min.isr=1\n\
             group.initial.rebalance.delay.ms=0\n",
            data = data.display()
        ),
    )?;
    let log4j = dir.join("log4j.properties");
    std::fs::write(
        &log4j,
        "log4j.rootLogger=WARN, stdout\n\
         log4j.logger.kafka.server.KafkaRaftServer=INFO\n\
         log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n\
         log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n\
         log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n",
    )?;
    let mut classpath = format!("{}/*", libs.display());
    if let Some(extra) = extra_classes {
        classpath = format!("{}:{classpath}", extra.display());
    }
    if !data.join("meta.properties").exists() {
        let out = Command::new("java")
            .args(["-cp", &classpath, "kafka.tools.StorageTool", "random-uuid"])
            .output()
            .context("running Kafka's StorageTool (is Java 17 installed?)")?;
        let cluster_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if cluster_id.is_empty() {
            bail!("Kafka StorageTool gave no cluster id: {}", String::from_utf8_lossy(&out.stderr));
        }
        install::run_logged(
            Command::new("java")
                .arg(format!("-Dlog4j.configuration=file:{}", log4j.display()))
                .args(["-cp", &classpath, "kafka.tools.StorageTool", "format", "-t", &cluster_id, "-c"])
                .arg(&props),
            &paths::log_dir().join(format!("{name}-format.log")),
        )
        .context("formatting the Kafka data directory")?;
    }
    let mut cmd = Command::new("java");
    cmd.args(["-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-Djava.awt.headless=true"])
        .arg(format!("-Dlog4j.configuration=file:{}", log4j.display()))
        .args(["-cp", &classpath, "kafka.Kafka"])
        .arg(&props);
    Ok(cmd)
}

/// MariaDB with its own data directory, ignoring any system my.cnf; the
/// data directory is initialised on first start and the init file makes
/// the database and the account of [`mysql_url`] on every start.
fn mariadb_command() -> Result<Command> {
    let dir = paths::local_dir().join("mariadb");
    let data = dir.join("data");
    std::fs::create_dir_all(&dir)?;
    // mariadbd refuses to run as root unless told to, and must not switch
    // to a `mysql` account that may not own our directory.
    let user = whoami()?;
    if !data.join("mysql").exists() {
        install::run_logged(
            Command::new("mariadb-install-db")
                .arg("--no-defaults")
                .arg(format!("--datadir={}", data.display()))
                .arg(format!("--user={user}"))
                .args(["--auth-root-authentication-method=socket", "--skip-test-db"]),
            &paths::log_dir().join("mariadb-install.log"),
        )
        .context("initialising the MariaDB data directory")?;
    }
    // One statement per line, no comments: the init file's rules. All
    // databases are granted: tests make one each, so they never share tables.
    let init = dir.join("init.sql");
    std::fs::write(
        &init,
        format!(
            "CREATE DATABASE IF NOT EXISTS {MARIADB_DATABASE};\n\
             CREATE USER IF NOT EXISTS '{MARIADB_USER}'@'127.0.0.1' IDENTIFIED BY '{MARIADB_PASSWORD}';\n\
             GRANT ALL PRIVILEGES ON *.* TO '{MARIADB_USER}'@'127.0.0.1';\n"
        ),
    )?;
    let mut cmd = Command::new(install::mariadbd()?);
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", data.display()))
        .arg(format!("--socket={}", paths::run_dir().join("mariadb.sock").display()))
        .arg(format!("--port={MARIADB_PORT}"))
        .args(["--bind-address=127.0.0.1", "--skip-name-resolve"])
        .arg(format!("--user={user}"))
        .arg(format!("--init-file={}", init.display()))
        // Small buffers: this is a test fixture of 11,000-row tables.
        .args(["--innodb-buffer-pool-size=64M", "--innodb-log-file-size=48M"]);
    Ok(cmd)
}

fn whoami() -> Result<String> {
    let out = Command::new("id").arg("-un").output().context("running `id -un`")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn spinner(msg: String) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").expect("valid template"));
    bar.enable_steady_tick(Duration::from_millis(120));
    bar.set_message(msg);
    bar
}

/// What `up` did for each service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpOutcome {
    Started,
    Reused,
}

/// Start every default service that is not running and healthy; wait until all are.
pub fn up() -> Result<Vec<(Service, UpOutcome)>> {
    up_services(&Service::DEFAULT)
}

/// Install what the given services need without starting them, so that a
/// caller can do it while it compiles (downloads, not CPU, are most of it).
/// Services already running are left alone.
pub fn prepare(services: &[Service]) -> Result<()> {
    for &svc in services {
        if svc.pid().is_none() {
            svc.command().with_context(|| format!("preparing {}", svc.name()))?;
        }
    }
    Ok(())
}

/// [`up`] for the given services.
pub fn up_services(services: &[Service]) -> Result<Vec<(Service, UpOutcome)>> {
    let mut outcomes = Vec::new();
    for &svc in services {
        outcomes.push((svc, up_one(svc)?));
    }
    Ok(outcomes)
}

fn up_one(svc: Service) -> Result<UpOutcome> {
    if svc.pid().is_some() {
        if svc.healthy() {
            eprintln!("{}: reusing the running service at {}", svc.name(), svc.address());
            return Ok(UpOutcome::Reused);
        }
        // Started by an earlier `up` and still coming up: wait for it.
        wait_healthy(svc, None, Duration::from_secs(90))?;
        return Ok(UpOutcome::Reused);
    }
    if svc.port_taken() {
        bail!(
            "{}: port {} on 127.0.0.1 is used by a process this tool did not start; stop it (e.g. `ss -ltnp | grep {}`) and run again",
            svc.name(),
            svc.port(),
            svc.port()
        );
    }
    let mut child = svc.spawn()?;
    eprintln!("{}: started (pid {}), log {}", svc.name(), child.id(), svc.log_file().display());
    wait_healthy(svc, Some(&mut child), Duration::from_secs(120))?;
    if svc == Service::Localstack {
        warm_up_localstack_kinesis()?;
    }
    Ok(UpOutcome::Started)
}

/// LocalStack installs its Kinesis (an npm package) on the first Kinesis
/// call, which then takes seconds; tests that send one attempt each should
/// not be that first call. A stream is made and removed with the boto3 of
/// LocalStack's own venv.
fn warm_up_localstack_kinesis() -> Result<()> {
    const SCRIPT: &str = r#"
import sys, time, boto3
k = boto3.client("kinesis", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
k.create_stream(StreamName="xtask-warm-up", ShardCount=1)
for _ in range(240):
    if k.describe_stream(StreamName="xtask-warm-up")["StreamDescription"]["StreamStatus"] == "ACTIVE":
        break
    time.sleep(0.5)
k.delete_stream(StreamName="xtask-warm-up")
"#;
    let bar = spinner("localstack: installing and starting its Kinesis (first use)".into());
    let started = Instant::now();
    let out = Command::new(paths::venv_dir("localstack").join("bin/python")).args(["-c", SCRIPT, &localstack_endpoint()]).output()?;
    bar.finish_and_clear();
    if !out.status.success() {
        bail!(
            "localstack: its Kinesis did not start ({}); end of {}:\n{}",
            String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or_default(),
            Service::Localstack.log_file().display(),
            install::tail(&Service::Localstack.log_file(), 20)
        );
    }
    eprintln!("localstack: Kinesis ready after {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Wait for health; `child` is the process we just spawned (its pid file
/// is not yet checkable: until exec, /proc shows our own command line).
fn wait_healthy(svc: Service, mut child: Option<&mut std::process::Child>, timeout: Duration) -> Result<()> {
    let bar = spinner(format!("waiting for {} at {}", svc.name(), svc.address()));
    let start = Instant::now();
    while start.elapsed() < timeout {
        if svc.healthy() {
            bar.finish_and_clear();
            eprintln!("{}: healthy at {} after {:.1}s", svc.name(), svc.address(), start.elapsed().as_secs_f64());
            return Ok(());
        }
        let exited = match child.as_deref_mut() {
            Some(c) => c.try_wait().ok().flatten().is_some(),
            None => svc.pid().is_none(),
        };
        if exited {
            bar.finish_and_clear();
            bail!("{} exited during start-up; end of {}:\n{}", svc.name(), svc.log_file().display(), install::tail(&svc.log_file(), 30));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    bar.finish_and_clear();
    bail!(
        "{} did not become healthy within {timeout:?}; end of {}:\n{}",
        svc.name(),
        svc.log_file().display(),
        install::tail(&svc.log_file(), 30)
    )
}

/// Stop the given services (SIGTERM, then SIGKILL after a grace period).
pub fn down(services: &[Service]) -> Result<()> {
    for &svc in services {
        let Some(pid) = svc.pid() else {
            let _ = std::fs::remove_file(svc.pid_file());
            eprintln!("{}: not running", svc.name());
            continue;
        };
        signal(pid, "TERM");
        // LocalStack's hypercorn gateway does not always stop on SIGTERM.
        let grace = if svc == Service::Localstack { Duration::from_secs(5) } else { Duration::from_secs(20) };
        let start = Instant::now();
        while svc.pid().is_some() && start.elapsed() < grace {
            // A zombie child of ours has an empty cmdline, so pid() is None.
            std::thread::sleep(Duration::from_millis(200));
        }
        if svc.pid().is_some() {
            signal(pid, "KILL");
            std::thread::sleep(Duration::from_millis(300));
        }
        if svc == Service::Localstack {
            // Its Kinesis Mock runs on in its own process otherwise.
            let _ = Command::new("pkill").args(["-KILL", "-f", "kinesis-local/"]).status();
        }
        let _ = std::fs::remove_file(svc.pid_file());
        eprintln!("{}: stopped (pid {pid})", svc.name());
    }
    Ok(())
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status();
}

/// One line per service: state, pid, address, log.
pub fn status() -> Vec<String> {
    let mut lines = vec![format!("{:<14} {:<9} {:<8} {:<24} {}", "name", "state", "pid", "address", "log")];
    for svc in Service::ALL {
        let (state, pid) = match svc.pid() {
            Some(pid) if svc.healthy() => ("healthy", pid.to_string()),
            Some(pid) => ("starting", pid.to_string()),
            None if svc.optional() => ("off", "-".into()),
            None => ("stopped", "-".into()),
        };
        lines.push(format!("{:<14} {:<9} {:<8} {:<24} {}", svc.name(), state, pid, svc.address(), svc.log_file().display()));
    }
    lines.push(format!(
        "kafka {KAFKA_VERSION} (KRaft), {MOTO_REQUIREMENT}, MariaDB from Debian's mariadb-server; source tables at {}; LocalStack ({}) with `local up --localstack`; the MSK IAM broker with `local up --msk-iam`",
        mysql_url(),
        LOCALSTACK_REQUIREMENTS[0]
    ));
    lines
}
