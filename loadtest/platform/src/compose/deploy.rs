//! Deploys on compose, by the lab over the engine: recreate (`up --force-recreate`), rolling
//! (`up --scale` one more, wait until it is ready, move the front door, stop the old one), a
//! bad release that never gets ready and is given up, one more replica.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use loadtest_results::component::{Build, Component};

use super::engine::{Container, Spec, docker, docker_output, inspect, is_ready, run, wait_ready};
use super::{
    BAD_RELEASE_DEADLINE, Compose, DEREGISTRATION_DELAY, READY_DEADLINE, STOP_GRACE_S,
    front_service,
};

impl Compose {
    pub(super) async fn recreate_container(&mut self, component: Component) -> anyhow::Result<()> {
        let service = component.as_str();
        run(
            &self.command,
            &[
                "up",
                "--detach",
                "--no-deps",
                "--no-build",
                "--force-recreate",
                service,
            ],
            &self.env,
        )
        .await?;
        for container in self.of(component).await? {
            self.settle(&container, READY_DEADLINE).await?;
        }
        self.follow_front().await
    }

    pub(super) async fn roll_container(&mut self, component: Component) -> anyhow::Result<()> {
        let old = self.of(component).await?;
        let fresh = self.scale_up(component, old.len() + 1).await?;
        if component.is_front() {
            self.point_front_at(&fresh).await?;
        }
        tokio::time::sleep(DEREGISTRATION_DELAY).await;
        for container in old {
            docker(&["stop", "--time", &STOP_GRACE_S.to_string(), &container.id]).await?;
            docker(&["rm", &container.id]).await?;
        }
        Ok(())
    }

    /// A release that cannot bind its address never gets ready; it is removed and the old
    /// container, which never stopped serving, stays.
    pub(super) async fn roll_bad_container(
        &mut self,
        component: Component,
    ) -> anyhow::Result<String> {
        let model = self.first(component).await?;
        let spec = docker(&["inspect", &model.id]).await?;
        let spec: Vec<Spec> = serde_json::from_str(&spec).context("read docker inspect")?;
        let spec = spec
            .into_iter()
            .next()
            .context("docker inspect answered nothing")?;
        let name = format!("{}-{}-bad-release", self.project, component.as_str());
        let mut args: Vec<String> = vec![
            "run".into(),
            "--detach".into(),
            "--name".into(),
            name.clone(),
            "--network".into(),
            self.network(),
            "--label".into(),
            format!("com.docker.compose.project={}", self.project),
        ];
        for variable in &spec.config.env {
            args.push("--env".into());
            args.push(variable.clone());
        }
        args.push(spec.config.image.clone());
        args.extend(spec.config.cmd.iter().flatten().cloned());
        // The same defect as the local target's bad release: an address it cannot bind.
        args.push("--bind=192.0.2.1".into());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let id = docker(&args).await?.trim().to_owned();
        let started = Instant::now();
        let why = loop {
            let bad = inspect(&id).await?;
            if !bad.running {
                break format!("the new container exited ({})", bad.status);
            }
            if is_ready(&self.http, &bad).await {
                let _ = docker(&["rm", "--force", &id]).await;
                anyhow::bail!("the bad release of {component} became ready");
            }
            if started.elapsed() >= BAD_RELEASE_DEADLINE {
                break format!("not ready within {BAD_RELEASE_DEADLINE:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let logs = docker_output(&["logs", "--tail", "3", &id]).await;
        docker(&["rm", "--force", &id]).await?;
        Ok(format!(
            "{why}; rolled back; its last output: {}",
            logs.trim()
        ))
    }

    pub(super) async fn one_more_container(
        &mut self,
        component: Component,
    ) -> anyhow::Result<usize> {
        let count = self.of(component).await?.len() + 1;
        self.scale_up(component, count).await?;
        if component.is_front() {
            let mut all = Vec::new();
            for container in self.of(component).await? {
                all.push(container.published(8080)?);
            }
            self.front_door.set_backends(&all).await?;
        }
        Ok(count)
    }

    /// Scales the service up to `count` containers; returns the new ones, ready.
    pub(super) async fn scale_up(
        &mut self,
        component: Component,
        count: usize,
    ) -> anyhow::Result<Vec<Container>> {
        let before: Vec<String> = self
            .of(component)
            .await?
            .into_iter()
            .map(|container| container.id)
            .collect();
        let service = component.as_str();
        let scale = format!("{service}={count}");
        run(
            &self.command,
            &[
                "up",
                "--detach",
                "--no-deps",
                "--no-build",
                "--no-recreate",
                "--scale",
                &scale,
                service,
            ],
            &self.env,
        )
        .await?;
        let fresh: Vec<Container> = self
            .of(component)
            .await?
            .into_iter()
            .filter(|container| !before.contains(&container.id))
            .collect();
        anyhow::ensure!(
            !fresh.is_empty(),
            "scaling {service} to {count} started nothing"
        );
        for container in &fresh {
            self.settle(container, READY_DEADLINE).await?;
        }
        Ok(fresh)
    }

    /// Waits until a new container is ready and holds it to the shop's cores.
    pub(super) async fn settle(
        &self,
        container: &Container,
        deadline: Duration,
    ) -> anyhow::Result<()> {
        wait_ready(&self.http, container, deadline).await?;
        if let Some(cpuset) = &self.cpuset {
            docker(&["update", "--cpuset-cpus", cpuset, &container.id]).await?;
        }
        Ok(())
    }

    /// The front door sends everything to these containers from now on.
    pub(super) async fn point_front_at(&mut self, containers: &[Container]) -> anyhow::Result<()> {
        let mut backends = Vec::new();
        for container in containers {
            backends.push(container.published(8080)?);
        }
        self.front_door.set_backends(&backends).await?;
        let first = containers.first().context("no container to point at")?;
        self.direct_url = first.published(8080)?;
        self.admin_url = match self.build {
            Build::Monolith => self.direct_url.clone(),
            Build::Micro => first.published(8081)?,
        };
        Ok(())
    }

    /// After the public container changed (a recreate, a restart), the front door and the
    /// lab's own URLs follow its published ports.
    pub(super) async fn follow_front(&mut self) -> anyhow::Result<()> {
        let front = Component::parse(front_service(self.build)).context("a front component")?;
        let running: Vec<Container> = self
            .of(front)
            .await?
            .into_iter()
            .filter(|container| container.running)
            .collect();
        self.point_front_at(&running).await
    }
}
