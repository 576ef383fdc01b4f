use super::*;
use crate::finding::{Category, DetectorId};

fn scanner() -> PiiScanner {
    PiiScanner::new(&PiiConfig::default()).unwrap()
}

fn scan_with(s: &PiiScanner, text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    s.scan(text, &mut out);
    crate::finding::checked_spans(text, &out, Category::Pii).into_iter().map(|(id, found, _)| (id, found)).collect()
}

fn scan(text: &str) -> Vec<(String, String)> {
    scan_with(&scanner(), text)
}

/// Asserts `text` yields exactly the (id, value) pairs, in order.
fn expect(text: &str, want: &[(&str, &str)]) {
    let got = scan(text);
    let want: Vec<(String, String)> = want.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
    assert_eq!(got, want, "in {text:?}");
}

fn none(text: &str) {
    expect(text, &[]);
}

#[test]
fn email_carriers() {
    expect(r#"{"user":{"email":"jane.doe@acme-corp.com","id":7}}"#, &[("pii.email", "jane.doe@acme-corp.com")]);
    expect(
        "2024-01-15T12:30:45.123Z INFO login ok user=bob.smith+alerts@gmail.com ip=10.0.0.12",
        &[("pii.email", "bob.smith+alerts@gmail.com"), ("pii.ipv4", "10.0.0.12")],
    );
    expect("ADMIN_EMAIL=ops@acme.io\n", &[("pii.email", "ops@acme.io")]);
    expect("Please write to Carol (carol@mail.acme.co.uk).", &[("pii.email", "carol@mail.acme.co.uk")]);
    expect("id,name,email\n1,Ann,ann@corp.de\n", &[("pii.email", "ann@corp.de")]);
}

#[test]
fn email_offsets_exact() {
    let text = r#"{"email": "jane@acme.com"}"#;
    let mut out = Vec::new();
    scanner().scan(text, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].start, out[0].end), (11, 24));
    assert_eq!(out[0].detector, DetectorId::Static("pii.email"));
    assert_eq!(out[0].score, EMAIL_SCORE);
}

#[test]
fn phone_carriers() {
    expect(r#"{"phone":"+1 415-555-2671"}"#, &[("pii.phone", "+1 415-555-2671")]);
    expect("call (415) 555-2671 today", &[("pii.phone", "(415) 555-2671")]);
    expect("tel: 415.555.2671\n", &[("pii.phone", "415.555.2671")]);
    expect("PHONE=+14155552671", &[("pii.phone", "+14155552671")]);
    expect("name,phone\nBob,415-555-2671\n", &[("pii.phone", "415-555-2671")]);
    expect(
        "UK office +44 20 7946 0958, DE +49 30 12345678.",
        &[("pii.phone", "+44 20 7946 0958"), ("pii.phone", "+49 30 12345678")],
    );
    expect("ring 0044 20 7946 0958", &[("pii.phone", "0044 20 7946 0958")]);
    expect("mobile: 4155552671", &[("pii.phone", "4155552671")]);
    expect("Paris: +33 1 23 45 67 89", &[("pii.phone", "+33 1 23 45 67 89")]);
    expect("+44 (0)20 7946 0958", &[("pii.phone", "+44 (0)20 7946 0958")]);
    expect("call 415 555 2671 2 times", &[("pii.phone", "415 555 2671")]);
    expect("415-555-2671,415-555-2672", &[("pii.phone", "415-555-2671"), ("pii.phone", "415-555-2672")]);
}

#[test]
fn phone_regions() {
    let eu =
        PiiScanner::new(&PiiConfig { phone_regions: vec!["GB".into(), "de".into()], ..Default::default() }).unwrap();
    assert_eq!(scan_with(&eu, "ruf 030 123456 an"), vec![("pii.phone".to_string(), "030 123456".to_string())]);
    assert_eq!(scan_with(&eu, "020 7946 0958"), vec![("pii.phone".to_string(), "020 7946 0958".to_string())]);
    assert!(scan_with(&eu, "(415) 555-2671").is_empty());
    // International numbers need no region.
    let no = PiiScanner::new(&PiiConfig { phone_regions: vec![], ..Default::default() }).unwrap();
    assert_eq!(scan_with(&no, "+1 415 555 2671").len(), 1);
    assert!(scan_with(&no, "415-555-2671").is_empty());
}

#[test]
fn phone_negatives() {
    for t in [
        "(555) 555-0123",
        "415-555-0199",
        "+1 415 555 0100",
        "2024-01-15",
        "2024-01-15 12:30:45,123",
        "at 12:30:45 on 15.01.2024",
        "version 1.2.3",
        "v10.15.7",
        "ts=1705312245123",
        "epoch 1705312245",
        "price $1,299.99 or €1 234,00",
        "id=4155552671",
        "order 415-555-26711",
        "x415-555-2671",
        "415-555-2671-9",
        "550e8400-e29b-41d4-a716-446655440000",
        "localhost:8080 port 5432",
        "415 5552 671",
        "iVBORw0KGgoAAAANSUhEUgAA+14155552671/AAA",
        "01/15/2024",
    ] {
        none(t);
    }
}

#[test]
fn phone_negatives_many_regions() {
    let regions = ["US", "GB", "DE", "FR", "NO", "DK", "ES", "IT", "NL", "PL"];
    let s = PiiScanner::new(&PiiConfig { phone_regions: regions.map(String::from).to_vec(), ..Default::default() })
        .unwrap();
    for t in [
        "lat 52.520008, lon 13.404954",
        "ISBN 0-306-40615-2",
        "isbn 978-3-16-148410-0",
        "hash 1234 5678 9012 3456 7890",
        "on 25.12.2023 and 2023-12-25 at 12:30:45",
        "Total: 1 234 567,89 EUR",
        "Invoice #2024-0001-5678",
        "took 1705312245.123 s",
        "build 20240115 in 1234 ms",
        "MAC 00-1A-2B-3C-4D-5E",
        "sensor 3.3.3.3.3",
    ] {
        assert_eq!(scan_with(&s, t), vec![], "{t}");
    }
    assert_eq!(scan_with(&s, "Mobil: 0151 23456789").len(), 1);
    assert_eq!(scan_with(&s, "06 12 34 56 78").len(), 1);
}

#[test]
fn ssn() {
    expect("SSN: 123-45-6789", &[("pii.ssn", "123-45-6789")]);
    expect(r#"{"ssn":"536 22 1234"}"#, &[("pii.ssn", "536 22 1234")]);
    expect("social security number 536221234 on file", &[("pii.ssn", "536221234")]);
    expect("ssn,name\n536-22-1234,Ann\n", &[("pii.ssn", "536-22-1234")]);
    for t in [
        "000-12-3456",
        "666-12-3456",
        "900-12-3456",
        "987-65-4321",
        "123-00-4567",
        "123-45-0000",
        "078-05-1120",
        "219-09-9999",
        "id 536221234",
        "123-45 6789",
        "a123-45-6789",
        "1 123 45 6789",
    ] {
        none(t);
    }
}

#[test]
fn credit_cards() {
    for card in [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "5555555555554444",
        "2223003122003222",
        "378282246310005",
        "3782 822463 10005",
        "6011111111111117",
        "3530111333300000",
        "30569309025904",
        "6200000000000005",
        "4222222222222",
    ] {
        expect(&format!("card={card};"), &[("pii.credit_card", card)]);
    }
    expect(r#"{"pan":"4111111111111111","exp":"12/26"}"#, &[("pii.credit_card", "4111111111111111")]);
    expect("paid with 4111 1111 1111 1111 2025", &[("pii.credit_card", "4111 1111 1111 1111")]);
    for t in [
        "4111111111111112",
        "1234567812345670",
        "order 41111111111111111111",
        "x4111111111111111",
        "4111111111111111a",
        "4111-1111 1111-1111",
        "ts 1705312245123",
        "ref 4111.1111.1111.1111",
    ] {
        none(t);
    }
}

#[test]
fn ibans() {
    expect("IBAN: DE89 3704 0044 0532 0130 00.", &[("pii.iban", "DE89 3704 0044 0532 0130 00")]);
    expect(r#"{"iban":"GB82WEST12345698765432"}"#, &[("pii.iban", "GB82WEST12345698765432")]);
    expect("IBAN=FR1420041010050500013M02606\n", &[("pii.iban", "FR1420041010050500013M02606")]);
    expect("acct,NL91ABNA0417164300,EUR", &[("pii.iban", "NL91ABNA0417164300")]);
    for t in [
        "DE88 3704 0044 0532 0130 00",
        "DE89370400440532013000X",
        "DE8937040044053201300",
        "XX89370400440532013000",
        "ADE89370400440532013000",
        "de89370400440532013000",
    ] {
        none(t);
    }
}

#[test]
fn ipv4() {
    let s = scanner();
    let mut out = Vec::new();
    s.scan("from 8.8.8.8 via 192.168.1.20:443 and 127.0.0.1, 10.0.0.0/8", &mut out);
    let got: Vec<(usize, usize, f32)> = out.iter().map(|f| (f.start, f.end, f.score)).collect();
    assert_eq!(
        got,
        vec![(5, 12, PUBLIC_SCORE), (17, 29, NON_PUBLIC_SCORE), (38, 47, NON_PUBLIC_SCORE), (49, 57, NON_PUBLIC_SCORE)]
    );
    expect(r#"{"client_ip":"203.0.114.7"}"#, &[("pii.ipv4", "203.0.114.7")]);
    expect("range 8.8.4.4-8.8.8.8", &[("pii.ipv4", "8.8.4.4"), ("pii.ipv4", "8.8.8.8")]);
    expect("ip addr 1.1.1.1.", &[("pii.ipv4", "1.1.1.1")]);
    for t in [
        "v1.2.3.4",
        "version 1.2.3.4",
        "Version: 10.0.19041.1",
        "ver=4.2.1.0",
        "0.0.0.0",
        "1.3.6.1.4.1.311",
        "256.1.1.1",
        "01.02.03.04",
        "a.1.2.3.4",
        "1.2.3",
        "1.2.3.4-beta",
        "lib-1.2.3.4.tar.gz",
        "python3.10.1.2",
    ] {
        none(t);
    }
}

#[test]
fn ipv6() {
    expect("peer=2606:4700:4700::1111 up", &[("pii.ipv6", "2606:4700:4700::1111")]);
    expect("[::1]:8080", &[("pii.ipv6", "::1")]);
    expect("::ffff:192.0.2.128", &[("pii.ipv6", "::ffff:192.0.2.128")]);
    for t in ["::", "std::vector<int> v;", "12:30:45", "de:ad:be:ef:00:01", "Foo::new()", "a::b"] {
        none(t);
    }
}

#[test]
fn hard_negatives() {
    for t in [
        "550e8400-e29b-41d4-a716-446655440000",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==",
        "user@example.com admin@test.example postmaster@foo.test",
        "(555) 555-0100 and 555-0142",
        "2024-01-15T12:30:45Z 2024/01/15 15.01.2024",
        "took 1705312245123 ms, port 8080, pid 12345, $19.99, 1,234,567",
        "lodash@4.17.21 icon@2x.png git@github.com:org/repo.git",
        "serial 1234567812345678",
        "build 20240115.3 rev 10.2.0.1",
    ] {
        none(t);
    }
}

#[test]
fn custom_recognizer_context_and_validator() {
    let config = PiiConfig {
        recognizers: vec![
            RecognizerConfig {
                id: "custom.employee_id".into(),
                pattern: r"\bE-\d{6}\b".into(),
                context: vec!["Employee".into()],
                context_window: 20,
                validator: None,
                score: 0.7,
            },
            RecognizerConfig {
                id: "pii.loyalty_card".into(),
                pattern: r"\bLC\d{12}\b".into(),
                context: vec![],
                context_window: 64,
                validator: Some(Validator::None),
                score: 0.8,
            },
            RecognizerConfig {
                id: "custom.luhn_id".into(),
                pattern: r"\bID\d{10,}\b".into(),
                context: vec![],
                context_window: 64,
                validator: None,
                score: 0.8,
            },
        ],
        ..Default::default()
    };
    let s = PiiScanner::new(&config).unwrap();
    let mut out = Vec::new();
    let text = "employee: E-123456; other E-654321 far away ........................ LC123456789012";
    s.scan(text, &mut out);
    let got: Vec<(&str, usize, usize, f32)> =
        out.iter().map(|f| (f.detector.as_str(), f.start, f.end, f.score)).collect();
    let lc = text.find("LC").unwrap();
    assert_eq!(got, vec![("custom.employee_id", 10, 18, 0.7), ("pii.loyalty_card", lc, lc + 14, 0.8)]);

    // Validators.
    let with = |validator, pattern: &str| {
        PiiScanner::new(&PiiConfig {
            phone_regions: vec![],
            recognizers: vec![RecognizerConfig {
                id: "custom.x".into(),
                pattern: pattern.into(),
                context: vec![],
                context_window: 64,
                validator: Some(validator),
                score: 0.5,
            }],
        })
        .unwrap()
    };
    let count = |s: &PiiScanner, t: &str| {
        let mut out = Vec::new();
        s.scan(t, &mut out);
        out.iter().filter(|f| f.detector.as_str() == "custom.x").count()
    };
    let luhn = with(Validator::Luhn, r"\bacct-[0-9]{8}\b");
    assert_eq!(count(&luhn, "acct-79927398"), 0, "letters in the match fail luhn");
    let luhn = with(Validator::Luhn, r"\b[0-9]{11}\b");
    assert_eq!(count(&luhn, "x 79927398713 y 79927398710"), 1);
    let m97 = with(Validator::Mod97, r"\b[A-Z]{2}\d{2}[A-Z0-9]{10,30}\b");
    assert_eq!(count(&m97, "a CH9300762011623852957 b CH9300762011623852958"), 1);
    let ssn = with(Validator::Ssn, r"\bS\d{9}\b");
    assert_eq!(count(&ssn, "S536221234"), 0, "the S prefix is part of the match");
    let ssn = with(Validator::Ssn, r"\d{3}/\d{2}/\d{4}");
    assert_eq!(count(&ssn, "536/22/1234"), 0);
    let ssn = with(Validator::Ssn, r"(?:\d{3}\.\d{2}\.\d{4})|\b\d{9}\b");
    assert_eq!(count(&ssn, "536221234 666221234"), 1);
}

#[test]
fn config_errors() {
    let rec = |id: &str, pattern: &str| RecognizerConfig {
        id: id.into(),
        pattern: pattern.into(),
        context: vec![],
        context_window: 64,
        validator: None,
        score: 0.8,
    };
    let err = |c: PiiConfig| PiiScanner::new(&c).unwrap_err();
    let e = err(PiiConfig { recognizers: vec![rec("pii.ok", "a"), rec("pii.bad", "(unclosed")], ..Default::default() });
    assert_eq!(e.path, "pii.recognizers[1].pattern");
    assert!(e.message.contains("unclosed") || e.message.contains("regex"), "{}", e.message);
    let e = err(PiiConfig { recognizers: vec![rec("secret.x", "a")], ..Default::default() });
    assert_eq!(e.path, "pii.recognizers[0].id");
    let e = err(PiiConfig { recognizers: vec![rec("custom.", "a")], ..Default::default() });
    assert_eq!(e.path, "pii.recognizers[0].id");
    let mut bad_score = rec("custom.s", "a");
    bad_score.score = 1.5;
    assert_eq!(err(PiiConfig { recognizers: vec![bad_score], ..Default::default() }).path, "pii.recognizers[0].score");
    let e = err(PiiConfig { phone_regions: vec!["US".into(), "XX".into()], ..Default::default() });
    assert_eq!(e.path, "pii.phone_regions[1]");
    assert!(e.message.contains("XX"));
    assert_eq!(err(PiiConfig { phone_regions: vec!["USA".into()], ..Default::default() }).path, "pii.phone_regions[0]");
}

#[test]
fn config_serde() {
    let c: PiiConfig = serde_json::from_value(serde_json::json!({})).unwrap();
    assert_eq!(c, PiiConfig::default());
    assert_eq!(c.phone_regions, vec!["US"]);
    let c: PiiConfig = serde_json::from_value(serde_json::json!({
        "phone_regions": ["GB"],
        "recognizers": [{"id": "custom.x", "pattern": "x\\d+", "validator": "luhn", "context": ["acct"]}]
    }))
    .unwrap();
    assert_eq!(c.recognizers[0].score, 0.8);
    assert_eq!(c.recognizers[0].context_window, 64);
    assert_eq!(c.recognizers[0].validator, Some(Validator::Luhn));
    assert!(serde_json::from_value::<PiiConfig>(serde_json::json!({"regions": []})).is_err());
    assert!(serde_json::from_value::<PiiConfig>(
        serde_json::json!({"recognizers": [{"id": "custom.x", "pattern": "x", "bogus": 1}]})
    )
    .is_err());
    let schema = schemars::schema_for!(PiiConfig);
    let text = serde_json::to_string(&schema).unwrap();
    assert!(text.contains("phone_regions") && text.contains("mod97"));
}

#[test]
fn odd_inputs_do_not_panic() {
    let s = scanner();
    let inputs: Vec<String> = vec![
        String::new(),
        "0".repeat(100_000),
        "@".repeat(100_000),
        ":".repeat(100_000),
        "1.".repeat(50_000),
        "1-".repeat(50_000),
        "1 ".repeat(50_000),
        "+".repeat(1000) + "1",
        "(".repeat(1000) + "1",
        "a@".repeat(50_000),
        "DE".repeat(10_000) + "89",
        "DE89 ".repeat(10_000),
        "ñ@ü.é 4111😀1111 1111 1111 ☎+1 415 555 2671€ 日本 ssn 536221234".repeat(100),
        "@a.bc".into(),
        "a@".into(),
        "+".into(),
        "(".into(),
        "1".into(),
        "12345678901234567890".into(),
        "(((415))) 555-2671".into(),
        "€4111111111111111".into(),
        "ü4111111111111111".into(),
        "1.1.1.1".into(),
        "::1".into(),
        "DE89".into(),
        "SSN".into(),
    ];
    for text in &inputs {
        let _ = scan_with(&s, text);
    }
    // Findings on multi-byte text point at the values.
    let text = "Grüße an jörg@bücher.de — Tel. +49 30 12345678 · Karte 4111 1111 1111 1111 ✓";
    let got = scan_with(&s, text);
    assert_eq!(
        got,
        vec![
            ("pii.email".to_string(), "jörg@bücher.de".to_string()),
            ("pii.phone".to_string(), "+49 30 12345678".to_string()),
            ("pii.credit_card".to_string(), "4111 1111 1111 1111".to_string()),
        ]
    );
}

#[test]
fn findings_sorted_and_appended() {
    let s = scanner();
    let mut out = vec![Finding::new("other", Category::Secret, 0, 1, 1.0)];
    s.scan("ip 8.8.8.8 mail a@corp.com card 4111111111111111", &mut out);
    assert_eq!(out[0].detector.as_str(), "other");
    let starts: Vec<usize> = out[1..].iter().map(|f| f.start).collect();
    assert!(starts.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(out.len(), 4);
}

/// A realistic 4 KiB of JSON, logs and prose with a few PII values.
fn sample_4k() -> String {
    let mut s = String::new();
    let mut i = 0u64;
    while s.len() < 4096 {
        i += 1;
        s.push_str(&format!(
            "2024-01-15T12:{:02}:{:02}.{:03}Z INFO request_id=550e8400-e29b-41d4-a716-44665544{:04} method=GET path=/api/v1/items/{} status=200 latency_ms={}.{} bytes={}\n",
            i % 60, (i * 7) % 60, (i * 13) % 1000, i, i * 31, i % 97, i % 10, 1000 + i * 17
        ));
        s.push_str(&format!(
            r#"{{"id":{},"ts":{},"name":"Item {}","price":{}.99,"tags":["a","b"],"sha":"9fceb02d0ae598e95dc970b74767f19372d61af{}","version":"1.{}.3"}}"#,
            i,
            1705312245123u64 + i,
            i,
            i * 3,
            i % 10,
            i % 20
        ));
        s.push('\n');
        s.push_str("The quick brown fox jumps over the lazy dog; see the docs at https://docs.rs/regex for details, version 1.10.2.\n");
        if i % 4 == 1 {
            s.push_str("contact jane.doe@acme-corp.com or +1 415-555-2671 from 203.0.113.9\n");
        }
    }
    s.truncate(4096);
    while !s.is_char_boundary(s.len()) {
        s.pop();
    }
    s
}

#[test]
fn sample_finds_only_planted_values() {
    let text = sample_4k();
    let got = scan(&text);
    assert!(!got.is_empty());
    for (id, value) in &got {
        assert!(
            matches!(value.as_str(), "jane.doe@acme-corp.com" | "+1 415-555-2671" | "203.0.113.9"),
            "unexpected {id} {value:?}"
        );
    }
}

#[test]
fn scanner_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PiiScanner>();
    assert_eq!(DETECTORS.len(), 7);
    assert!(format!("{:?}", PiiScanner::default()).contains("US"));
}
