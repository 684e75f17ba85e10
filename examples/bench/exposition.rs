//! paymirror's `/metrics`, read as Prometheus text by the bench.

/// One scrape of paymirror's `/metrics`.
pub struct Exposition(String);

impl Exposition {
    /// Reads `{base}/metrics`, or `None` if it does not answer.
    pub async fn scrape(base: &str) -> Option<Exposition> {
        let text = reqwest::get(format!("{base}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        Some(Exposition(text))
    }

    /// The value of the series `name` exported without labels, if it is.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.0
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse::<f64>().ok())
    }
}
