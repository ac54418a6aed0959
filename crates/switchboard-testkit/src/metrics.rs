//! `/metrics` read back: the OpenMetrics exposition as text and as samples.

use std::collections::HashMap;

use crate::http::send;

/// One scrape of `/metrics`.
pub struct Scrape {
    /// The exposition as served.
    pub text: String,
    /// Its samples: `name{labels}` (labels as written) to value.
    pub samples: HashMap<String, f64>,
}

impl Scrape {
    /// The sample `key`, which must be there.
    pub fn get(&self, key: &str) -> f64 {
        *self
            .samples
            .get(key)
            .unwrap_or_else(|| panic!("no sample `{key}` in\n{}", self.text))
    }
}

/// Scrapes `url` (a server's `/metrics`), which must answer a complete OpenMetrics exposition.
pub async fn scrape(url: &str) -> Scrape {
    let answer = send(reqwest::Client::new().get(url)).await;
    assert_eq!(answer.status, 200);
    let content_type = answer.headers["content-type"]
        .to_str()
        .expect("a text header");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(
        answer.body.trim_end().ends_with("# EOF"),
        "complete exposition"
    );
    Scrape {
        samples: samples(&answer.body),
        text: answer.body,
    }
}

/// The samples of an OpenMetrics exposition: `name{labels}` (labels as written) to value; each
/// sample must appear once.
pub fn samples(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (key, value) = line.rsplit_once(' ').expect("`name value`");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("number in {line}"));
        assert!(
            samples.insert(key.to_owned(), value).is_none(),
            "duplicate {key}"
        );
    }
    samples
}
