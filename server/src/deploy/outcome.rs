//! How a deployment ends, from the stack's status once CloudFormation is done: a pure table,
//! tested on its own.

use app::deployment::Operation;
use app::model::StackStatus;

use super::run::{Done, Stop};

/// A deployment's end, read off its stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub result: Result<Done, Stop>,
    /// CloudFormation rolled the stack back to what it was.
    pub rolled_back: bool,
}

/// What the watch knows when it reads the stack.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub operation: Operation,
    /// The stack's status; `None` when the stack is gone.
    pub status: Option<StackStatus>,
    /// A cancel was sent and CloudFormation took it.
    pub cancelled: bool,
    /// A cancel was sent and refused (it came too late), with AWS's words.
    pub cancel_refused: Option<&'a str>,
    /// Why the operation failed, as CloudFormation says (its first failed resource).
    pub reason: &'a str,
}

/// `None` while the stack operation runs; the deployment's ending once it is terminal.
pub fn outcome(seen: Seen<'_>) -> Option<Ending> {
    use StackStatus::*;
    let ending = |result| {
        Some(Ending {
            result,
            rolled_back: false,
        })
    };
    let Some(status) = seen.status else {
        // The stack is gone: only a cancelled create deletes it.
        return ending(if seen.cancelled {
            Err(Stop::Cancelled(
                "cancelled: the half-created stack was deleted".into(),
            ))
        } else {
            Err(Stop::Failed(
                "the stack disappeared while it was being deployed".into(),
            ))
        });
    };
    if status.is_in_progress() {
        return None;
    }
    let reason = seen.reason;
    let rolled_back = |result| {
        Some(Ending {
            result,
            rolled_back: true,
        })
    };
    match (seen.operation, status) {
        (Operation::Create, CreateComplete) | (Operation::Update, UpdateComplete) => {
            ending(Ok(Done {
                message: seen.cancel_refused.map(|refused| {
                    format!(
                        "the cancel came too late ({refused}); CloudFormation finished the change"
                    )
                }),
            }))
        }
        (_, DeleteComplete) if seen.cancelled => ending(Err(Stop::Cancelled(
            "cancelled: the half-created stack was deleted".into(),
        ))),
        (Operation::Update, UpdateRollbackComplete) if seen.cancelled => {
            rolled_back(Err(Stop::Cancelled(
                "cancelled: CloudFormation rolled the stack back to the previous build".into(),
            )))
        }
        (_, UpdateRollbackComplete | RollbackComplete) => rolled_back(Err(Stop::Failed(format!(
            "{reason}; the stack was rolled back"
        )))),
        (_, UpdateRollbackFailed) => ending(Err(Stop::Failed(format!(
            "{reason}; the rollback failed too, the stack needs attention"
        )))),
        (_, status) => ending(Err(Stop::Failed(format!(
            "{reason} (stack status {})",
            status.as_aws_str()
        )))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(operation: Operation, status: Option<StackStatus>) -> Seen<'static> {
        Seen {
            operation,
            status,
            cancelled: false,
            cancel_refused: None,
            reason: "Bucket (AWS::S3::Bucket) failed: access denied",
        }
    }

    #[test]
    fn a_running_operation_has_no_outcome_yet() {
        for status in [
            StackStatus::CreateInProgress,
            StackStatus::UpdateInProgress,
            StackStatus::UpdateRollbackInProgress,
            StackStatus::UpdateCompleteCleanupInProgress,
        ] {
            assert_eq!(outcome(seen(Operation::Update, Some(status))), None);
        }
    }

    #[test]
    fn a_complete_operation_succeeds() {
        let end = outcome(seen(Operation::Create, Some(StackStatus::CreateComplete))).unwrap();
        assert_eq!(end.result, Ok(Done { message: None }));
        assert!(!end.rolled_back);
        let end = outcome(seen(Operation::Update, Some(StackStatus::UpdateComplete))).unwrap();
        assert!(end.result.is_ok());
    }

    #[test]
    fn an_update_rolled_back_fails_with_the_reason_and_says_so() {
        let end = outcome(seen(
            Operation::Update,
            Some(StackStatus::UpdateRollbackComplete),
        ))
        .unwrap();
        assert!(end.rolled_back);
        assert_eq!(
            end.result,
            Err(Stop::Failed(
                "Bucket (AWS::S3::Bucket) failed: access denied; the stack was rolled back".into()
            ))
        );
    }

    #[test]
    fn a_cancelled_update_rolled_back_is_cancelled_not_failed() {
        let mut s = seen(Operation::Update, Some(StackStatus::UpdateRollbackComplete));
        s.cancelled = true;
        let end = outcome(s).unwrap();
        assert!(end.rolled_back);
        assert!(matches!(end.result, Err(Stop::Cancelled(m)) if m.contains("previous build")));
    }

    #[test]
    fn a_cancelled_create_whose_stack_is_gone_is_cancelled_an_unexplained_loss_fails() {
        let mut s = seen(Operation::Create, None);
        assert!(
            matches!(outcome(s).unwrap().result, Err(Stop::Failed(m)) if m.contains("disappeared"))
        );
        s.cancelled = true;
        assert!(
            matches!(outcome(s).unwrap().result, Err(Stop::Cancelled(m)) if m.contains("deleted"))
        );
        s.status = Some(StackStatus::DeleteComplete);
        assert!(matches!(
            outcome(s).unwrap().result,
            Err(Stop::Cancelled(_))
        ));
    }

    #[test]
    fn a_failed_rollback_asks_for_attention() {
        let end = outcome(seen(
            Operation::Update,
            Some(StackStatus::UpdateRollbackFailed),
        ))
        .unwrap();
        assert!(matches!(end.result, Err(Stop::Failed(m)) if m.contains("needs attention")));
    }

    #[test]
    fn a_cancel_that_came_too_late_is_said_on_the_success() {
        let mut s = seen(Operation::Update, Some(StackStatus::UpdateComplete));
        s.cancel_refused = Some("CancelUpdateStack cannot be called from current stack status");
        let end = outcome(s).unwrap();
        assert!(matches!(end.result, Ok(Done { message: Some(m) }) if m.contains("came too late")));
    }

    #[test]
    fn any_other_terminal_status_fails_naming_it() {
        let end = outcome(seen(Operation::Create, Some(StackStatus::RollbackComplete))).unwrap();
        assert!(end.rolled_back);
        let end = outcome(seen(Operation::Create, Some(StackStatus::CreateFailed))).unwrap();
        assert!(matches!(end.result, Err(Stop::Failed(m)) if m.contains("CREATE_FAILED")));
    }
}
