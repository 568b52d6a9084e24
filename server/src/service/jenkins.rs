//! The Jenkins builds panel, as every viewer reads it: what the one poller last saw.

use app::jenkins::JenkinsBuilds;

use super::{Actor, Services};

impl Services {
    pub fn jenkins_builds(&self, _actor: &Actor) -> JenkinsBuilds {
        self.jenkins.builds()
    }
}
