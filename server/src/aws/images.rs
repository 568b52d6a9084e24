//! Whether the machine images a build's parameters name exist in an account: DescribeImages,
//! filtered by id (the images the account may launch — its own, shared with it, public — are
//! listed; a deregistered or never-shared one is not).

use super::AwsFailure;

/// The ids among `ids` that the account cannot see.
pub async fn missing(ec2: &aws_sdk_ec2::Client, ids: &[String]) -> Result<Vec<String>, AwsFailure> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let filter = aws_sdk_ec2::types::Filter::builder()
        .name("image-id")
        .set_values(Some(ids.to_vec()))
        .build();
    let mut found = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let out = ec2
            .describe_images()
            .filters(filter.clone())
            .include_deprecated(true)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| AwsFailure::from_sdk("looking up machine images".to_owned(), e))?;
        found.extend(
            out.images()
                .iter()
                .filter_map(|i| i.image_id().map(str::to_owned)),
        );
        match out.next_token() {
            Some(token) if !token.is_empty() => next = Some(token.to_owned()),
            _ => break,
        }
    }
    Ok(ids
        .iter()
        .filter(|id| !found.contains(id))
        .cloned()
        .collect())
}

/// Whether a parameter value is an image id (`ami-` and 8 or 17 hexadecimal digits).
pub fn looks_like_image(value: &str) -> bool {
    value.strip_prefix("ami-").is_some_and(|hex| {
        matches!(hex.len(), 8 | 17) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

#[cfg(test)]
mod tests {
    use super::looks_like_image;

    #[test]
    fn image_ids_are_told_from_other_values() {
        assert!(looks_like_image("ami-1e749f67"));
        assert!(looks_like_image("ami-0abcdef0123456789"));
        assert!(!looks_like_image("ami-latest"));
        assert!(!looks_like_image("t3.small"));
        assert!(!looks_like_image("ami-0abc"));
    }
}
