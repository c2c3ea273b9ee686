//! The result table the benchmark drivers print: per subject, the median and p90 of the
//! milliseconds and the median peak RSS, then the first subject's speed-up over the second.

/// `results[i]` holds subject `i`'s runs as (milliseconds, peak RSS MiB). Subject 0 is ours,
/// subject 1 the reference.
pub fn print(title: &str, names: &[&str], results: &[Vec<(f64, f64)>], goal: &str) {
    println!("{title}\n");
    println!(
        "{:28} {:>10} {:>8} {:>13}",
        "subject", "median ms", "p90 ms", "peak RSS MiB"
    );
    let mut medians = Vec::new();
    for (name, runs) in names.iter().zip(results) {
        let mut ms: Vec<f64> = runs.iter().map(|r| r.0).collect();
        ms.sort_by(|a, b| a.total_cmp(b));
        let mut rss: Vec<f64> = runs.iter().map(|r| r.1).collect();
        rss.sort_by(|a, b| a.total_cmp(b));
        let median = ms[ms.len() / 2];
        let p90 = ms[(ms.len() * 9 / 10).min(ms.len() - 1)];
        let rss = rss[rss.len() / 2];
        medians.push((median, rss));
        println!("{name:28} {median:>10.1} {p90:>8.1} {rss:>13.1}");
    }
    println!(
        "\nspeed-up: {:.1}×; peak RSS ratio {:.2} ({goal})",
        medians[1].0 / medians[0].0,
        medians[0].1 / medians[1].1
    );
}

/// The command line every cold-start driver takes: `RUNS RUST_BINARY PYTHON SCRIPT`. Runs
/// `one(run, program, args)` for our binary and for the Python reference (the interpreter with
/// the script as its argument), interleaved, then prints the table.
pub async fn compare_with_python<F, Fut>(
    driver: &str,
    ours: &str,
    title: &str,
    goal: &str,
    mut one: F,
) -> Result<(), String>
where
    F: FnMut(usize, String, Vec<String>) -> Fut,
    Fut: std::future::Future<Output = Result<(f64, f64), String>>,
{
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [runs, rust, python, script] = args.as_slice() else {
        return Err(format!("usage: {driver} RUNS RUST_BINARY PYTHON SCRIPT"));
    };
    let runs: usize = runs.parse().map_err(|_| "RUNS must be a number")?;
    let subjects = [
        (ours, rust.clone(), vec![]),
        (
            "python + boto3 reference",
            python.clone(),
            vec![script.clone()],
        ),
    ];
    let mut results: Vec<Vec<(f64, f64)>> = vec![Vec::new(), Vec::new()];
    for run in 0..runs {
        for (i, (_, program, args)) in subjects.iter().enumerate() {
            results[i].push(one(run, program.clone(), args.clone()).await?);
        }
    }
    let names: Vec<&str> = subjects.iter().map(|(name, _, _)| *name).collect();
    print(
        &format!("{title} ({runs} runs each, interleaved)"),
        &names,
        &results,
        goal,
    );
    Ok(())
}
