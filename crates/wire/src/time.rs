//! Relative times ("2 hours ago"), computed from the server's clock so SSR and hydration agree.

use chrono::{DateTime, Utc};

pub fn ago(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds();
    if secs < 45 {
        return "just now".to_owned();
    }
    let (n, unit) = match secs {
        s if s < 90 => (1, "minute"),
        s if s < 3_600 => ((s + 30) / 60, "minute"),
        s if s < 5_400 => (1, "hour"),
        s if s < 86_400 => ((s + 1_800) / 3_600, "hour"),
        s if s < 129_600 => (1, "day"),
        s if s < 30 * 86_400 => ((s + 43_200) / 86_400, "day"),
        _ => return then.format("%Y-%m-%d").to_string(),
    };
    if n == 1 {
        format!("1 {unit} ago")
    } else {
        format!("{n} {unit}s ago")
    }
}

/// A timestamp for a tooltip, e.g. `2026-11-26 13:47 UTC`.
pub fn exact(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn relative_times_read_like_a_person_would_say_them() {
        let now = Utc::now();
        assert_eq!(ago(now, now - Duration::seconds(10)), "just now");
        assert_eq!(ago(now, now - Duration::minutes(1)), "1 minute ago");
        assert_eq!(ago(now, now - Duration::minutes(17)), "17 minutes ago");
        assert_eq!(ago(now, now - Duration::hours(2)), "2 hours ago");
        assert_eq!(ago(now, now - Duration::days(3)), "3 days ago");
    }
}
