//! `pipeline-local`: the CodePipeline extension functions on a laptop, with no Docker and no
//! AWS account.
//!
//! - [`runtime_api::FunctionHost`] runs a real function binary behind the Lambda Runtime API.
//! - [`endpoints::LocalAws`] serves S3 (`s3s` + `s3s-fs`), CodePipeline, Secrets Manager,
//!   CloudWatch alarms, DynamoDB, RDS snapshots, CloudFront invalidations, STS and SSM Parameter Store on loopback,
//!   speaking their real wire protocols, recording every call ([`calls`]) and injecting
//!   planned failures ([`faults`]).
//! - [`job_invocation`] drives a CodePipeline job through a function, continuations included.
//! - [`pipeline`] executes the pipeline of `template.yaml` end to end; [`cli`] is the command line.

#![warn(missing_docs)]

pub mod calls;
pub mod cli;
pub mod cloudfront;
pub mod cloudwatch;
pub mod codepipeline;
pub mod console;
pub mod dynamodb;
pub mod endpoints;
pub mod faults;
pub mod job_invocation;
pub mod pipeline;
pub mod rds;
pub mod runtime_api;
pub mod s3;
pub mod secretsmanager;
pub mod service;
pub mod slack;
pub mod ssm;
pub mod state_folder;
pub mod sts;
pub mod tls;
pub mod zips;
