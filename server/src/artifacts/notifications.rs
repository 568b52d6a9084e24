//! S3 event notifications: which keys of the artifacts bucket were just written. The bucket
//! sends `s3:ObjectCreated:*` events to an SQS queue — directly, or through an SNS topic (then
//! each SQS message wraps the S3 event in an SNS envelope). The builds watch reads the queue and
//! re-lists only the projects whose folders changed.
//!
//! Shapes: <https://docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html>
//! (`Records[].s3.object.key`, URL-encoded with `+` for a space) and the `s3:TestEvent` S3 sends
//! when the notification is configured.

use serde::Deserialize;

#[derive(Deserialize)]
struct S3Event {
    #[serde(rename = "Records", default)]
    records: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: Entity,
}

#[derive(Deserialize)]
struct Entity {
    bucket: Bucket,
    object: Object,
}

#[derive(Deserialize)]
struct Bucket {
    name: String,
}

#[derive(Deserialize)]
struct Object {
    key: String,
}

/// An SNS notification delivered to SQS (raw message delivery off).
#[derive(Deserialize)]
struct SnsEnvelope {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Message")]
    message: String,
}

/// The keys of `bucket` that one SQS message body says were created (or removed: a folder
/// deleted changes the listing too). A test event, another bucket's or an unreadable message
/// gives none — it is deleted from the queue all the same, as it will never say more.
pub fn changed_keys(body: &str, bucket: &str) -> Vec<String> {
    let body = match serde_json::from_str::<SnsEnvelope>(body) {
        Ok(envelope) if envelope.kind == "Notification" => envelope.message,
        _ => body.to_owned(),
    };
    let Ok(event) = serde_json::from_str::<S3Event>(&body) else {
        return Vec::new();
    };
    event
        .records
        .into_iter()
        .filter(|r| r.s3.bucket.name == bucket)
        .filter(|r| {
            r.event_name.starts_with("ObjectCreated") || r.event_name.starts_with("ObjectRemoved")
        })
        .map(|r| decode_key(&r.s3.object.key))
        .collect()
}

/// S3 event keys are URL-encoded, a space as `+`.
fn decode_key(key: &str) -> String {
    let plus_as_space = key.replace('+', " ");
    percent_decode(&plus_as_space)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(byte) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The project a key belongs to: `<prefix><project>/<build folder>/<file>` → `project`.
pub fn project_of<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = key.strip_prefix(prefix)?;
    let (project, rest) = rest.split_once('/')?;
    (!project.is_empty() && !rest.is_empty()).then_some(project)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As S3 sends it to SQS (the documented structure, as moto 5.2 emits it too).
    const DIRECT: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-1",
        "eventTime":"2026-11-27T10:00:00.000Z","eventName":"ObjectCreated:Put",
        "s3":{"s3SchemaVersion":"1.0","configurationId":"deployer-builds",
              "bucket":{"name":"deployer-artifacts","arn":"arn:aws:s3:::deployer-artifacts"},
              "object":{"key":"builds/web/web-feature%2Blogin-3/parameters+PRD.json","size":120,"eTag":"abc"}}}]}"#;

    #[test]
    fn a_direct_notification_names_its_keys_decoded() {
        assert_eq!(
            changed_keys(DIRECT, "deployer-artifacts"),
            vec!["builds/web/web-feature+login-3/parameters PRD.json"]
        );
        assert!(changed_keys(DIRECT, "another-bucket").is_empty());
    }

    #[test]
    fn a_notification_through_sns_is_unwrapped() {
        let envelope = serde_json::json!({
            "Type": "Notification",
            "MessageId": "0b1e4c2a",
            "TopicArn": "arn:aws:sns:eu-west-1:444444444444:artifacts",
            "Subject": "Amazon S3 Notification",
            "Message": DIRECT,
        })
        .to_string();
        assert_eq!(changed_keys(&envelope, "deployer-artifacts").len(), 1);
    }

    #[test]
    fn a_test_event_or_garbage_names_nothing() {
        let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-27T10:00:00.000Z",
            "Bucket":"deployer-artifacts","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}"#;
        assert!(changed_keys(test_event, "deployer-artifacts").is_empty());
        assert!(changed_keys("not json", "deployer-artifacts").is_empty());
        let restore = DIRECT.replace("ObjectCreated:Put", "ObjectRestore:Completed");
        assert!(changed_keys(&restore, "deployer-artifacts").is_empty());
        let removed = DIRECT.replace("ObjectCreated:Put", "ObjectRemoved:Delete");
        assert_eq!(changed_keys(&removed, "deployer-artifacts").len(), 1);
    }

    #[test]
    fn a_key_belongs_to_the_project_folder_it_is_in() {
        assert_eq!(
            project_of("builds/web/web-master-3/template.yaml", "builds/"),
            Some("web")
        );
        assert_eq!(
            project_of("web/web-master-3/template.yaml", ""),
            Some("web")
        );
        assert_eq!(project_of("builds/web", "builds/"), None);
        assert_eq!(project_of("other/web/x", "builds/"), None);
        assert_eq!(project_of("builds//x", "builds/"), None);
    }

    #[test]
    fn percent_escapes_decode_and_a_broken_one_is_kept() {
        assert_eq!(percent_decode("a%20b%2Fc"), "a b/c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
