//! What each frame a client sends does once it passed the permission check: `sub` and
//! `unsub` (and checking subscriptions again when permissions change), `pub`, `req` and
//! `reply`.

use super::*;

impl Session {
    pub(super) fn on_sub(&mut self, sub: Sub) -> Answer {
        let id = Some(sub.id);
        check_app(id, &sub.app)?;
        if self.subs.contains_key(&sub.id) {
            return Err((
                id,
                ErrorBody::new(
                    ErrorCode::BadFrame,
                    format!("subscription id {} is already in use", sub.id),
                ),
            ));
        }
        let limit = self.ctx.limits.max_subscriptions;
        if self.subs.len() >= limit {
            return Err((
                id,
                ErrorBody::new(
                    ErrorCode::RateLimited,
                    format!(
                        "this connection has {limit} subscriptions, the limit; unsubscribe first"
                    ),
                ),
            ));
        }
        let pattern = Pattern::parse(&sub.topic)
            .map_err(|e| (id, ErrorBody::new(ErrorCode::BadTopic, e.to_string())))?;
        let op = if sub.serve { Op::Serve } else { Op::Sub };
        self.check(&sub.app, op, pattern.as_str(), || pattern.clone())
            .map_err(|e| (id, e))?;
        let ns = self.namespace(pattern.literal_root());
        let target = Target {
            outbox: self.outbox.clone(),
            sub: sub.id,
        };
        self.ctx.hub.subscribe(ns, &pattern, target, sub.serve);
        self.subs.insert(
            sub.id,
            SubEntry {
                ns,
                pattern,
                serve: sub.serve,
                app: sub.app.as_str().into(),
            },
        );
        Ok(Some(ServerFrame::Ok(frame::Ack { id: sub.id })))
    }

    /// The permissions changed (an app was uninstalled or updated, a manifest edited): end
    /// the subscriptions that would no longer be allowed, each with an `err` naming it.
    pub(super) fn recheck_subscriptions(&mut self) -> Vec<String> {
        let mut ended = Vec::new();
        let ids: Vec<u64> = self.subs.keys().copied().collect();
        for id in ids {
            let Some(entry) = self.subs.get(&id) else {
                continue;
            };
            let op = if entry.serve { Op::Serve } else { Op::Sub };
            let (app, pattern) = (entry.app.clone(), entry.pattern.clone());
            if let Err(e) = self.check(&app, op, pattern.as_str(), || pattern.clone()) {
                if let Some(entry) = self.subs.remove(&id) {
                    self.ctx.hub.unsubscribe(
                        entry.ns,
                        &entry.pattern,
                        self.outbox.id,
                        id,
                        entry.serve,
                    );
                }
                let msg = format!(
                    "subscription {id} to {} as {app} has ended: {}",
                    pattern.as_str(),
                    e.msg
                );
                ended.push(ServerFrame::err(Some(id), e.code, &msg).to_json());
            }
        }
        ended
    }

    pub(super) fn on_unsub(&mut self, id: u64, sub: u64) -> Answer {
        let Some(entry) = self.subs.remove(&sub) else {
            return Err((
                Some(id),
                ErrorBody::new(ErrorCode::NotFound, format!("no subscription {sub}")),
            ));
        };
        self.ctx
            .hub
            .unsubscribe(entry.ns, &entry.pattern, self.outbox.id, sub, entry.serve);
        Ok(Some(ServerFrame::Ok(frame::Ack { id })))
    }

    /// Check that `app` may `op` on `topic`: the topic, its `msg` head and the app, as an
    /// envelope carries them.
    pub(super) fn topic(
        &mut self,
        id: Option<u64>,
        app: &str,
        topic: &str,
        op: Op,
    ) -> Result<Resolved, (Option<u64>, ErrorBody)> {
        let generation = self.ctx.perms.generation();
        if let Some(recent) = &self.recent
            && recent.op == op
            && recent.generation == generation
            && recent.text == topic
            && *recent.app == *app
        {
            return Ok(Resolved {
                topic: recent.topic.clone(),
                head: recent.head.clone(),
                app: recent.app.clone(),
            });
        }
        check_app(id, app)?;
        let parsed = Topic::parse(topic)
            .map_err(|e| (id, ErrorBody::new(ErrorCode::BadTopic, e.to_string())))?;
        // A literal topic is its own pattern.
        self.check(app, op, parsed.as_str(), || parsed.as_pattern())
            .map_err(|e| (id, e))?;
        let head = msg_head(&parsed, &self.caller.user, app);
        let app: Arc<str> = app.into();
        self.recent = Some(Recent {
            app: app.clone(),
            text: topic.to_owned(),
            op,
            generation,
            topic: parsed.clone(),
            head: head.clone(),
            listeners: None,
        });
        Ok(Resolved {
            topic: parsed,
            head,
            app,
        })
    }

    pub(super) fn on_pub(&mut self, publish: PubRef<'_>) -> Answer {
        let Resolved { topic, head, app } =
            self.topic(publish.id, publish.app, publish.topic, Op::Pub)?;
        let ns = self.namespace(Some(topic.root()));
        let data = publish
            .data
            .map_or_else(frame::null_data, |data| frame::one_line(data.to_owned()));
        let envelope = Envelope::new(topic, self.caller.clone(), app, data).with_head(head);
        let envelope = Arc::new(envelope);
        // `topic` above left `recent` describing this topic: its listeners are kept
        // there while nobody subscribes or unsubscribes anywhere.
        let hub = &self.ctx.hub;
        let generation = hub.generation();
        let kept = self
            .recent
            .as_ref()
            .and_then(|r| r.listeners.as_ref())
            .filter(|(_, at)| *at == generation);
        if let Some((listeners, _)) = kept {
            hub.publish_to(listeners, envelope);
        } else {
            let (listeners, at) = hub.lookup_now(ns, &envelope.topic);
            hub.publish_to(&listeners, envelope);
            if let Some(recent) = &mut self.recent {
                recent.listeners = Some((listeners, at));
            }
        }
        Ok(publish.id.map(|id| ServerFrame::Ok(frame::Ack { id })))
    }

    pub(super) fn on_req(&mut self, request: Request) -> Answer {
        let Request {
            id,
            app,
            topic,
            data,
            timeout_ms,
        } = request;
        let Resolved { topic, head, app } = self.topic(Some(id), &app, &topic, Op::Req)?;
        let limits = &self.ctx.limits;
        if self.outbox.pending_requests.load(Ordering::Acquire) >= limits.max_pending_requests {
            return Err((
                Some(id),
                ErrorBody::new(
                    ErrorCode::RateLimited,
                    format!(
                        "{} requests are already waiting, the limit",
                        limits.max_pending_requests
                    ),
                ),
            ));
        }
        // 0 means the default, as it does everywhere a timeout is given (the guest interface).
        let timeout_ms = timeout_ms
            .filter(|&ms| ms > 0)
            .unwrap_or(limits.default_request_timeout_ms)
            .clamp(1, limits.max_request_timeout_ms);
        let ns = self.namespace(Some(topic.root()));
        let envelope = Envelope::new(
            topic,
            self.caller.clone(),
            app,
            data.map_or_else(frame::null_data, frame::one_line),
        )
        .with_head(head);
        let requester = Requester {
            outbox: self.outbox.clone(),
            id,
        };
        self.ctx
            .hub
            .request(
                ns,
                Arc::new(envelope),
                requester,
                Duration::from_millis(timeout_ms),
            )
            .map_err(|e| (Some(id), e))?;
        Ok(None)
    }

    pub(super) fn on_reply(&mut self, reply: Reply) -> Answer {
        let Ok(to) = reply.to.parse::<u64>() else {
            return Err((
                None,
                ErrorBody::new(
                    ErrorCode::BadFrame,
                    "`to` must be the `reply` of a request you received",
                ),
            ));
        };
        let result = match (reply.data, reply.error) {
            (_, Some(error)) => Err(error),
            (data, None) => Ok(data.map_or_else(frame::null_data, frame::one_line)),
        };
        self.ctx
            .hub
            .reply(self.outbox.id, to, result)
            .map_err(|e| (None, e))?;
        Ok(None)
    }
}
