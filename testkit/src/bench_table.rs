//! The result table the benchmark drivers print: per subject and wire (plain HTTP, HTTPS), the
//! median and p90 of the milliseconds and the median peak RSS, then ours against the reference
//! on each wire and what TLS adds to each.

/// How the endpoints are reached in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wire {
    /// Plain HTTP on loopback.
    Http,
    /// HTTPS with a CA made for the run (`pipeline-local --tls`), as on Lambda.
    Https,
}

impl Wire {
    /// Both, in the order the tables show them.
    pub const BOTH: [Wire; 2] = [Wire::Http, Wire::Https];

    /// `http` or `https`.
    pub fn name(self) -> &'static str {
        match self {
            Wire::Http => "http",
            Wire::Https => "https",
        }
    }
}

fn summary(runs: &[(f64, f64)]) -> (f64, f64, f64) {
    let mut ms: Vec<f64> = runs.iter().map(|r| r.0).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let mut rss: Vec<f64> = runs.iter().map(|r| r.1).collect();
    rss.sort_by(|a, b| a.total_cmp(b));
    (
        ms[ms.len() / 2],
        ms[(ms.len() * 9 / 10).min(ms.len() - 1)],
        rss[rss.len() / 2],
    )
}

/// `results[wire][i]` holds subject `i`'s runs on that wire as (milliseconds, peak RSS MiB).
/// Subject 0 is ours, subject 1 the reference.
pub fn print(title: &str, names: &[&str; 2], results: &[[Vec<(f64, f64)>; 2]; 2], goal: &str) {
    println!("{title}\n");
    println!(
        "{:28} {:>5} {:>10} {:>8} {:>13}",
        "subject", "wire", "median ms", "p90 ms", "peak RSS MiB"
    );
    let mut medians = [[(0.0, 0.0); 2]; 2];
    for (w, wire) in Wire::BOTH.iter().enumerate() {
        for (i, name) in names.iter().enumerate() {
            let (median, p90, rss) = summary(&results[w][i]);
            medians[w][i] = (median, rss);
            println!(
                "{name:28} {:>5} {median:>10.1} {p90:>8.1} {rss:>13.1}",
                wire.name()
            );
        }
    }
    println!();
    for (w, wire) in Wire::BOTH.iter().enumerate() {
        let [ours, reference] = medians[w];
        println!(
            "{:>5}: speed-up {:.1}×; peak RSS ratio {:.2} ({goal})",
            wire.name(),
            reference.0 / ours.0,
            ours.1 / reference.1
        );
    }
    for (i, name) in names.iter().enumerate() {
        println!(
            "TLS adds {:.1} ms to {name}",
            medians[1][i].0 - medians[0][i].0
        );
    }
}

/// The command line every cold-start driver takes: `RUNS RUST_BINARY PYTHON SCRIPT`. Runs
/// `one(run, program, args, wire)` for our binary and for the Python reference (the interpreter
/// with the script as its argument) over HTTP and HTTPS, all interleaved, then prints the table.
pub async fn compare_with_python<F, Fut>(
    driver: &str,
    ours: &str,
    title: &str,
    goal: &str,
    mut one: F,
) -> Result<(), String>
where
    F: FnMut(usize, String, Vec<String>, Wire) -> Fut,
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
    let mut results: [[Vec<(f64, f64)>; 2]; 2] = Default::default();
    for run in 0..runs {
        for (w, wire) in Wire::BOTH.into_iter().enumerate() {
            for (i, (_, program, args)) in subjects.iter().enumerate() {
                results[w][i].push(one(run, program.clone(), args.clone(), wire).await?);
            }
        }
    }
    print(
        &format!("{title} ({runs} runs each, interleaved)"),
        &[subjects[0].0, subjects[1].0],
        &results,
        goal,
    );
    Ok(())
}
