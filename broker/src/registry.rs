//! Which Kafka APIs, and which versions of each, this node serves: each API module's `SPEC`,
//! collected in `api::REGISTERED`, checked once at start-up against what the `kafka-protocol`
//! crate can encode. Apart from `api` so that the node state can hold it without depending on
//! the handlers.

use std::collections::BTreeMap;

use kafka_protocol::messages::ApiKey;

use crate::error::{BrokerError, Result};

/// The versions of one API this broker serves.
#[derive(Debug, Clone, Copy)]
pub struct ApiSpec {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

impl ApiSpec {
    pub fn supports(&self, version: i16) -> bool {
        (self.min..=self.max).contains(&version)
    }
}

/// API key -> served versions, checked against what the `kafka-protocol` crate can encode.
#[derive(Debug, Clone)]
pub struct Registry {
    specs: BTreeMap<i16, ApiSpec>,
}

impl Registry {
    pub fn new(specs: &[ApiSpec]) -> Result<Registry> {
        let mut map = BTreeMap::new();
        for spec in specs {
            let codec = spec.key.valid_versions();
            if spec.min < codec.min || spec.max > codec.max || spec.min > spec.max {
                return Err(BrokerError::Invalid(format!(
                    "{:?} registered for v{}..=v{} but the codec supports v{}..=v{}",
                    spec.key, spec.min, spec.max, codec.min, codec.max
                )));
            }
            if map.insert(spec.key as i16, *spec).is_some() {
                return Err(BrokerError::Invalid(format!("{:?} is registered twice", spec.key)));
            }
        }
        Ok(Registry { specs: map })
    }

    pub fn get(&self, key: ApiKey) -> Option<&ApiSpec> {
        self.specs.get(&(key as i16))
    }

    pub fn iter(&self) -> impl Iterator<Item = &ApiSpec> {
        self.specs.values()
    }
}
