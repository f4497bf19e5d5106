//! sigshim.1 is generated from the clap definition; this test fails when it is stale.
//! Regenerate with `UPDATE_MAN=1 cargo test --test man`.

#[test]
fn man_page_is_current() {
    let cmd = sigshim::cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .section("1")
        .manual("System Manager's Manual")
        .render(&mut page)
        .expect("render");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/sigshim.1");
    if std::env::var_os("UPDATE_MAN").is_some() {
        std::fs::write(path, &page).expect("write sigshim.1");
    }
    let committed = std::fs::read(path).unwrap_or_default();
    assert!(
        committed == page,
        "sigshim.1 is out of date: run UPDATE_MAN=1 cargo test --test man"
    );
    let text = String::from_utf8(page).unwrap();
    for must in [
        "\\-\\-kill\\-after",
        "\\-\\-ready",
        "Exit status",
        "Upstart",
        "systemd",
        "ENTRYPOINT",
    ] {
        assert!(text.contains(must), "man page lacks {must}");
    }
}
