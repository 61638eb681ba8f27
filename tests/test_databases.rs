//! The harness leaves nothing behind: every test database is dropped when its test ends,
//! passing or failing.

mod support;

#[tokio::test]
async fn a_database_is_dropped_when_its_test_passes() {
    let db = support::fresh_database().await;
    let name = db.name().to_string();
    assert!(support::database_exists(&name).await, "created: {name}");
    let pool = concertina::db::connect(&db).await.expect("connect");
    drop(db); // an open pool does not keep it: FORCE ends the session
    assert!(
        !support::database_exists(&name).await,
        "{name} was left behind"
    );
    pool.close().await;
}

#[tokio::test]
async fn a_database_is_dropped_when_its_test_panics() {
    let (sender, receiver) = std::sync::mpsc::channel();
    let failing_test = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let db = support::fresh_database().await;
            sender.send(db.name().to_string()).expect("send the name");
            panic!("a failing test");
        })
    });
    assert!(failing_test.join().is_err(), "the test thread panicked");
    let name = receiver.recv().expect("the name");
    assert!(
        !support::database_exists(&name).await,
        "{name} was left behind"
    );
}
