//! Criterion benches for signed data parts: verification per second of a small signed
//! e-form (RSA-2048 and P-256) and of a 10 MiB signed document, each beside ring's raw
//! verification of one signature with the same key, measured in the same run, and a
//! "floor": raw verification plus the least XML work any verifier does (a digest and a
//! tokenizer pass over the document).
//!
//! Everything is made here without external tools: a signer CA with rcgen, the P-256 key
//! with ring (through rcgen), the RSA-2048 key with the `rsa` crate, the signatures with
//! shsd's test signer (ring). Run: `cargo bench --bench signature`; numbers go in
//! BENCHMARKS.md. Under `cargo test --all-targets` (criterion's test mode, each bench run
//! once) the large document is 256 KiB instead of 10 MiB, to keep the test run short.
//!
//! On a shared, loaded machine wall-clock time mostly measures the other load (a run
//! preempted half the time takes twice as long). With `SHSD_BENCH_CPU_TIME=1` every bench
//! measures the bench thread's CPU time instead (`CLOCK_THREAD_CPUTIME_ID`), which time
//! spent waiting for a CPU does not count; the ratios of our rate to ring's are then far
//! steadier. Criterion still prints the unit as time ("µs" of CPU time).

use chrono::Utc;
use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::{Criterion, Throughput};
use rcgen::KeyPair;
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey, VerificationAlgorithm,
};
use rsa::pkcs8::EncodePrivateKey;
use shsd::signature::sign::{SignOptions, XmlSigner};
use shsd::signature::test_pki::{SignerUsage, TestCa, Validity};
use shsd::signature::{DataPart, SignaturePolicy, SignerTrust, VerifyOptions, verify_part};

const FORM: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<eform xmlns=\"urn:example:eform\" Id=\"form1\">\n\
  <applicant><name>Anna Andersson</name><pnr>19800101-1234</pnr>\
<address>Storgatan 1, 123 45 Exempelstad</address></applicant>\n\
  <application type=\"bygglov\"><property>Exempelstad 1:23</property>\
<description>Tillbyggnad av enbostadshus, 25 kvm</description><amount currency=\"SEK\">1200</amount></application>\n\
</eform>\n";

/// A signed document of about `size` bytes: the e-form with many rows.
fn large_form(size: usize) -> String {
    let row = "  <row n=\"1\"><item>Byggmaterial &amp; arbete</item><price>100</price></row>\n";
    let mut doc = String::with_capacity(size + 1024);
    doc.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<eform xmlns=\"urn:example:eform\">\n",
    );
    while doc.len() < size {
        doc.push_str(row);
    }
    doc.push_str("</eform>\n");
    doc
}

struct Case {
    name: &'static str,
    signer: XmlSigner,
    raw_alg: &'static dyn VerificationAlgorithm,
}

fn cases(ca: &TestCa) -> Vec<Case> {
    let p256 = KeyPair::generate().expect("P-256 key");
    let p256_cert = ca
        .issue(
            "Bench P-256 signer",
            &p256,
            Validity::Current,
            SignerUsage::NonRepudiation,
        )
        .expect("cert");
    let rsa_key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("RSA key");
    let rsa_pkcs8 = rsa_key.to_pkcs8_der().expect("PKCS#8").as_bytes().to_vec();
    let rsa = KeyPair::try_from(rsa_pkcs8.as_slice()).expect("rcgen reads the RSA key");
    let rsa_cert = ca
        .issue(
            "Bench RSA signer",
            &rsa,
            Validity::Current,
            SignerUsage::NonRepudiation,
        )
        .expect("cert");
    vec![
        Case {
            name: "rsa2048",
            signer: XmlSigner::from_pkcs8(&rsa_pkcs8, vec![rsa_cert.der]).expect("signer"),
            raw_alg: &RSA_PKCS1_2048_8192_SHA256,
        },
        Case {
            name: "p256",
            signer: XmlSigner::from_pkcs8(&p256.serialize_der(), vec![p256_cert.der])
                .expect("signer"),
            raw_alg: &ECDSA_P256_SHA256_FIXED,
        },
    ]
}

fn bench<M: Measurement>(c: &mut Criterion<M>) {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let large = if bench_mode { 10 << 20 } else { 256 << 10 };
    let ca = TestCa::root("Bench Signer CA").expect("CA");
    let trust = SignerTrust::new(vec![ca.cert.der.clone()], Vec::new()).expect("trust");
    let options = VerifyOptions {
        trust: &trust,
        at: Utc::now(),
        allow_legacy_sha1: false,
    };
    let sign_options = SignOptions {
        exclusive: true,
        ..SignOptions::default()
    };
    let big = large_form(large);
    for case in cases(&ca) {
        let message = b"<ds:SignedInfo>about the size of a canonical SignedInfo element, \
            with its canonicalisation, signature method and one reference with its \
            transforms, digest method and digest value</ds:SignedInfo>"
            .repeat(3);
        let raw_signature = case.signer.sign_bytes(&message).expect("raw signature");
        let public_key = case.signer.public_key();
        let raw = UnparsedPublicKey::new(case.raw_alg, &public_key);

        let small = case
            .signer
            .sign_enveloped(FORM, &sign_options)
            .expect("signs");
        eprintln!(
            "{}: signed e-form {} bytes, raw message {} bytes",
            case.name,
            small.len(),
            message.len()
        );
        let mut group = c.benchmark_group(format!("signature/{}", case.name));
        group.throughput(Throughput::Elements(1));
        group.bench_function("ring_raw_verify", |b| {
            b.iter(|| raw.verify(&message, &raw_signature).expect("raw verifies"))
        });
        // What no XML-DSig verifier of this document can skip, with the parser used here:
        // the signature (as raw), a SHA-256 pass over the document and one pass of
        // quick-xml events over it (no tree, no canonicalisation, no certificate). Its
        // ratio to the raw rate bounds what `small_eform` can reach.
        group.bench_function("floor_raw_digest_tokenize", |b| {
            b.iter(|| {
                raw.verify(&message, &raw_signature).expect("raw verifies");
                let digest = ring::digest::digest(&ring::digest::SHA256, small.as_bytes());
                let mut reader = quick_xml::Reader::from_str(&small);
                let mut events = 0usize;
                loop {
                    match reader.read_event().expect("well-formed") {
                        quick_xml::events::Event::Eof => break,
                        quick_xml::events::Event::Start(tag)
                        | quick_xml::events::Event::Empty(tag) => {
                            events += tag.attributes().count();
                        }
                        _ => events += 1,
                    }
                }
                (digest, events)
            })
        });
        group.bench_function("small_eform", |b| {
            let part = DataPart {
                content_type: "text/xml",
                content: small.as_bytes(),
                detached_signature: None,
            };
            b.iter(|| {
                verify_part(&part, SignaturePolicy::Required, &options)
                    .expect("verifies")
                    .expect("signed")
            })
        });
        group.finish();

        let mut group = c.benchmark_group(format!("signature/{}", case.name));
        group.sample_size(10);
        group.throughput(Throughput::Bytes(big.len() as u64));
        group.bench_function(format!("document_{}KiB", big.len() >> 10), |b| {
            // Signed here, so that a run filtered to other benches does not pay for it.
            let signed_big = case
                .signer
                .sign_enveloped(&big, &sign_options)
                .expect("signs");
            let part = DataPart {
                content_type: "application/xml",
                content: signed_big.as_bytes(),
                detached_signature: None,
            };
            b.iter(|| {
                verify_part(&part, SignaturePolicy::Required, &options)
                    .expect("verifies")
                    .expect("signed")
            })
        });
        group.finish();
    }
}

/// The CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid, exclusive pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Criterion measurement of the bench thread's CPU time (see the module comment).
struct ThreadCpuTime;

/// Formats CPU time as criterion formats wall time.
static WALL_TIME: WallTime = WallTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        thread_cpu_time()
    }

    fn end(&self, start: Duration) -> Duration {
        thread_cpu_time().saturating_sub(start)
    }

    fn add(&self, v1: &Duration, v2: &Duration) -> Duration {
        *v1 + *v2
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        WALL_TIME.formatter()
    }
}

fn main() {
    if std::env::var_os("SHSD_BENCH_CPU_TIME").is_some_and(|v| v != "0") {
        let mut c = Criterion::default()
            .with_measurement(ThreadCpuTime)
            .configure_from_args();
        bench(&mut c);
        c.final_summary();
    } else {
        let mut c = Criterion::default().configure_from_args();
        bench(&mut c);
        c.final_summary();
    }
}
