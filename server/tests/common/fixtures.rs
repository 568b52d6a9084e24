//! Templates the tests deploy, and the gate that holds a create in progress.

/// A template whose create waits: moto holds the stack in CREATE_IN_PROGRESS when CreateStack
/// meets a `Custom::` resource backed by a Lambda of the same template, until the test answers
/// for the Lambda ([`Harness::release_gate`]).
pub const GATED_TEMPLATE: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Greeting:
    Type: String
Resources:
  HookRole:
    Type: AWS::IAM::Role
    Properties:
      RoleName: !Sub "${AWS::StackName}-hook"
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal: { Service: lambda.amazonaws.com }
            Action: sts:AssumeRole
  Hook:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.11
      Handler: index.handler
      Role: !GetAtt HookRole.Arn
      Code:
        ZipFile: "def handler(event, context): pass"
  Wait:
    Type: Custom::Wait
    Properties:
      ServiceToken: !GetAtt Hook.Arn
      Greeting: !Ref Greeting
"#;

/// Answers for the gate's Lambda on moto's cfnresponse endpoint: the gated create completes.
pub async fn release_gate(moto_endpoint: &str, account: &str, stack_id: &str) {
    let port = moto_endpoint.rsplit(':').next().unwrap();
    let response = reqwest::Client::new()
        .put(format!("http://localhost:{port}/cloudformation_eu-west-1/cfnresponse?stack={stack_id}"))
        .header("content-type", "application/json")
        // The Lambda's answer carries no credentials: moto takes the account from this header
        // and the region from the (unchecked) credential scope of an Authorization header.
        .header("x-moto-account-id", account)
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261126/eu-west-1/cloudformation/aws4_request, SignedHeaders=host, Signature=0",
        )
        .body(serde_json::json!({"Status": "SUCCESS", "LogicalResourceId": "Wait", "StackId": stack_id, "Data": {}}).to_string())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

/// [`TEMPLATE`] plus a bucket: an update with something to add (and data to lose if removed).
pub fn template_with_a_bucket() -> String {
    TEMPLATE.replace(
        "Outputs:",
        "  Uploads:\n    Type: AWS::S3::Bucket\nOutputs:",
    )
}

pub const TEMPLATE: &str = r#"
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Greeting:
    Type: String
  Secret:
    Type: String
    NoEcho: true
    Default: hunter2
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Message:
    Type: AWS::SSM::Parameter
    Properties:
      Name: !Sub "/${AWS::StackName}/greeting"
      Type: String
      Value: !Ref Greeting
Outputs:
  QueueUrl:
    Value: !Ref Queue
    Export:
      Name: !Sub "${AWS::StackName}-QueueUrl"
"#;
