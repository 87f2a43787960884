//! Reading cookies straight from a request's `Cookie` headers, for the few places that must see
//! every occurrence of a name (a cookie jar keeps only one).

use http::HeaderMap;

/// Every value sent under `name`, in order, across all `Cookie` headers.
pub fn values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    pairs(headers).filter_map(move |(key, value)| (key == name).then_some(value))
}

/// Every `name=value` pair of the request's `Cookie` headers (pairs without `=` are skipped).
pub fn pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_occurrence_across_headers_is_seen() {
        let mut headers = HeaderMap::new();
        headers.append(http::header::COOKIE, "a=1; b=2;; junk".parse().unwrap());
        headers.append(http::header::COOKIE, "a=3".parse().unwrap());
        assert_eq!(values(&headers, "a").collect::<Vec<_>>(), ["1", "3"]);
        assert_eq!(values(&headers, "b").collect::<Vec<_>>(), ["2"]);
        assert_eq!(pairs(&headers).count(), 3);
    }
}
