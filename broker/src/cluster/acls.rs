//! ACL bindings in cluster mode: changes are controller commands, so every node applies them in
//! the same order and a restarted node gets them back by replaying the controller log; reads
//! come from this node's applied copy (as a Kafka broker answers DescribeAcls from its own
//! authorizer cache).

use std::time::Duration;

use kafka_protocol::ResponseError;

use crate::acls::{AclBinding, AclFilter};
use crate::cluster::metadata::{ControllerCommand, ControllerReply};
use crate::cluster::topics::{propose_error, KafkaError};
use crate::cluster::Cluster;

/// How long a read waits for a restarted node to replay the controller log (as Metadata does).
const CATCH_UP: Duration = Duration::from_secs(5);

impl Cluster {
    /// Stores validated bindings; answers once this node has applied them.
    pub async fn create_acls(&self, bindings: Vec<AclBinding>) -> Result<(), KafkaError> {
        let count = bindings.len();
        match self
            .propose_controller(ControllerCommand::CreateAcls { bindings })
            .await
            .map_err(propose_error)?
        {
            ControllerReply::Done => {
                tracing::info!(count, "ACL bindings stored through the controller");
                Ok(())
            }
            other => Err((ResponseError::UnknownServerError, format!("controller answered {other:?}"))),
        }
    }

    /// Removes what validated filters match; per filter, the bindings it matched.
    pub async fn delete_acls(&self, filters: Vec<AclFilter>) -> Result<Vec<Vec<AclBinding>>, KafkaError> {
        match self
            .propose_controller(ControllerCommand::DeleteAcls { filters })
            .await
            .map_err(propose_error)?
        {
            ControllerReply::AclsDeleted { matched } => {
                tracing::info!(
                    count = matched.iter().map(Vec::len).sum::<usize>(),
                    "ACL bindings deleted through the controller"
                );
                Ok(matched)
            }
            other => Err((ResponseError::UnknownServerError, format!("controller answered {other:?}"))),
        }
    }

    /// The stored bindings a filter matches, from this node's applied metadata.
    pub async fn describe_acls(&self, filter: &AclFilter) -> Result<Vec<AclBinding>, KafkaError> {
        if !self.wait_metadata_ready(CATCH_UP).await {
            // Retriable: an empty answer from a node still replaying would look like "no ACLs".
            return Err((
                ResponseError::NotController,
                format!("this node has not caught up with the controller log within {CATCH_UP:?}"),
            ));
        }
        Ok(crate::acls::describe(&self.metadata().acls, filter))
    }
}
