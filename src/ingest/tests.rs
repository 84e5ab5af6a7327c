use super::*;
use std::io::Write;

fn file(content: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(content.as_bytes()).unwrap();
    f
}

fn read(content: &str, map: &str, skip: bool) -> anyhow::Result<TransactionData> {
    let f = file(content);
    read_transactions(f.path(), &map.parse()?, &CardKey::new(b"k"), skip, |_| {})
}

const GOOD: &str = "txn_id,timestamp,card_num,amount,country,merchant,merchant_category,label,fraud_scenario
b,2025-01-02T00:00:00Z,4111111111111111,5.00,FR,M2,grocery,1,3
a,2025-01-01T00:00:00Z,4111111111111111,12.50,us,M1,fuel,0,0
";

#[test]
fn reads_generator_files_in_time_order() {
    let data = read(GOOD, "", false).unwrap();
    assert!(data.has_labels);
    let ids: Vec<&str> = data.rows.iter().map(|r| r.txn.txn_id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(data.rows[0].txn.country.as_str(), "US");
    assert_eq!(data.rows[0].line, 3);
    assert_eq!(data.rows[1].label, Some(true));
}

#[test]
fn column_mapping_and_optional_columns() {
    let csv = "TX_TIME,CUSTOMER,TX_AMOUNT,TERMINAL,TX_FRAUD\n2025-01-01 10:00:00,17,3.5,T9,0\n";
    let data =
        read(csv, "card=CUSTOMER,timestamp=TX_TIME,amount=TX_AMOUNT,merchant=TERMINAL,label=TX_FRAUD", false).unwrap();
    let t = &data.rows[0].txn;
    assert_eq!(t.merchant, "T9");
    assert_eq!(t.country.as_str(), "ZZ");
    assert_eq!(t.txn_id, "line-2");
    assert_eq!(t.merchant_category, None);
}

#[test]
fn errors_name_the_line_and_column() {
    let bad = GOOD.replace("12.50", "twelve");
    let err = read(&bad, "", false).unwrap_err().to_string();
    assert!(err.contains("line 3, column `amount`: `twelve`"), "{err}");

    let bad = GOOD.replace("2025-01-02T00:00:00Z", "soon");
    let err = read(&bad, "", false).unwrap_err().to_string();
    assert!(err.contains("line 2, column `timestamp`"), "{err}");

    let err = format!("{:#}", read("a,b\n1,2\n", "", false).unwrap_err());
    assert!(err.contains("no column `timestamp`"), "{err}");
    // A `;`-separated file is one column to a comma reader: say so, not "map it with --columns".
    let semi = GOOD.replace(',', ";");
    let err = format!("{:#}", read(&semi, "", false).unwrap_err());
    assert!(err.contains("looks `;`-separated") && !err.contains("--columns"), "{err}");

    let err = read(GOOD, "cardd=X", false).unwrap_err().to_string();
    assert!(err.contains("unknown field `cardd`"), "{err}");

    let header_only = GOOD.lines().next().unwrap().to_owned() + "\n";
    assert!(read(&header_only, "", false).unwrap_err().to_string().contains("no data rows"));
    assert!(read("", "", false).is_err());
}

#[test]
fn skip_bad_rows_counts_them() {
    let bad = GOOD.replace("12.50", "-1");
    let data = read(&bad, "", true).unwrap();
    assert_eq!(data.rows.len(), 1);
    assert_eq!(data.skipped.len(), 1);
    assert!(data.skipped[0].contains("line 3"));
}

#[test]
fn numeric_files_default_to_every_numeric_column_but_the_target() {
    let f = file("id,V1,V2,Class\nx,1.5,2,0\ny,3,4,1\n");
    let spec = NumericSpec { target: Some("Class".into()), features: vec![] };
    let d = read_numeric(f.path(), &spec, false).unwrap();
    assert_eq!(d.names, ["V1", "V2"]);
    assert_eq!(d.matrix.row(1), &[3.0, 4.0]);
    assert_eq!(d.labels, Some(vec![false, true]));

    let spec = NumericSpec { target: Some("Missing".into()), features: vec![] };
    assert!(read_numeric(f.path(), &spec, false).unwrap_err().to_string().contains("no column `Missing`"));

    let f = file("V1,Class\n1,0\nabc,1\n");
    let spec = NumericSpec { target: Some("Class".into()), features: vec![] };
    let err = read_numeric(f.path(), &spec, false).unwrap_err().to_string();
    assert!(err.contains("line 3, column `V1`"), "{err}");
}

#[test]
fn label_time_and_scenario_columns_are_read_and_checked() {
    let csv = "TX_TIME,CUSTOMER,TX_AMOUNT,TX_FRAUD,KNOWN,SCEN\n\
               2025-01-01 10:00:00,17,3.5,1,2025-01-03 00:00:00,2\n\
               2025-01-01 11:00:00,18,4.5,0,,0\n";
    let map = "card=CUSTOMER,timestamp=TX_TIME,amount=TX_AMOUNT,label=TX_FRAUD,label_time=KNOWN,scenario=SCEN";
    let data = read(csv, map, false).unwrap();
    assert!(data.has_scenarios);
    assert_eq!(data.rows[0].label_time, Some(1_735_862_400));
    assert_eq!(data.rows[0].scenario.as_deref(), Some("2"));
    assert_eq!(data.rows[1].label_time, None);
    let bad = "TX_TIME,CUSTOMER,TX_AMOUNT,TX_FRAUD,KNOWN\n2025-01-01 10:00:00,17,3.5,1,soon\n";
    let err = read(bad, map, false).unwrap_err().to_string();
    assert!(err.contains("line 2") && err.contains("KNOWN") && err.contains("soon"), "{err}");
    // The generator's files name their scenario column `fraud_scenario`.
    assert!(read(GOOD, "", false).unwrap().has_scenarios);
}

#[test]
fn declared_fields_are_read_from_their_columns_and_pii_is_never_echoed() {
    let schema = crate::domain::fields::Schema::parse(
        r#"
        [[field]]
        name = "device_id"
        kind = "entity"
        column = "DEVICE"
        [[field]]
        name = "email"
        kind = "entity"
        pii = true
        [[field]]
        name = "place"
        kind = "location"
        columns = ["lat", "lon"]
        "#,
    )
    .unwrap();
    let map = ColumnMap::default().with_schema(schema);
    let csv = "txn_id,timestamp,card_num,amount,DEVICE,email,lat,lon
a,2025-01-01T00:00:00Z,4111111111111111,12.50,d-1,bob@example.com,48.8,2.3
b,2025-01-02T00:00:00Z,4111111111111111,5.00,,,,
";
    let f = file(csv);
    let rows = read_transactions(f.path(), &map, &CardKey::new(b"k"), false, |_| {}).unwrap().rows;
    let a = &rows[0].txn.fields;
    assert_eq!(a[0], crate::domain::fields::FieldValue::Text("d-1".into()));
    assert!(a[1].text().is_some_and(|t| t.starts_with("tok_")), "{a:?}");
    assert_eq!(a[2], crate::domain::fields::FieldValue::Location { lat: 48.8, lon: 2.3 });
    assert!(rows[1].txn.fields.iter().all(crate::domain::fields::FieldValue::is_missing), "empty cells are missing");
    // A bad PII value: the line and column are named, the value is not.
    let bad = file(&csv.replace("bob@example.com", &format!("bob{}@example.com", "x".repeat(300))));
    let err = read_transactions(bad.path(), &map, &CardKey::new(b"k"), false, |_| {}).unwrap_err().to_string();
    assert!(err.contains("line 2, column `email`") && !err.contains("bob"), "{err}");
    // A file without a declared field's columns reads it as missing; a required one is an error.
    let good = file(GOOD);
    let rows = read_transactions(good.path(), &map, &CardKey::new(b"k"), false, |_| {}).unwrap().rows;
    assert!(rows.iter().all(|r| r.txn.fields.len() == 3 && r.txn.fields.iter().all(|v| v.is_missing())));
    let required =
        crate::domain::fields::Schema::parse("[[field]]\nname = \"device_id\"\nkind = \"entity\"\nrequired = true")
            .unwrap();
    let map = ColumnMap::default().with_schema(required);
    let err = read_transactions(good.path(), &map, &CardKey::new(b"k"), false, |_| {}).unwrap_err();
    assert!(format!("{err:#}").contains("required field `device_id`"), "{err:#}");
}
