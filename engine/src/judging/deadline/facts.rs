//! A subject's facts as known at the check's instant, read from the facts queries' rows.

use super::*;

/// A batch's columns by [`Col`], looked up once per batch rather
/// than once per cell.
pub(super) struct Columns<'a> {
    pub(super) b: &'a RecordBatch,
    pub(super) index: [Option<usize>; COLUMNS],
}

impl<'a> Columns<'a> {
    pub(super) fn of(b: &'a RecordBatch) -> Self {
        let schema = b.schema_ref();
        let mut index = [None; COLUMNS];
        for (place, name) in index.iter_mut().zip(Col::NAMES) {
            *place = schema.index_of(name).ok();
        }
        Columns { b, index }
    }
    pub(super) fn get(&self, c: Col) -> Option<&'a arrow::array::ArrayRef> {
        self.index[c as usize].map(|i| self.b.column(i))
    }
}

/// Column accessors over one row of a batch.
pub(super) struct Row<'a> {
    pub(super) c: &'a Columns<'a>,
    pub(super) r: usize,
    pub(super) as_of: i64,
}

impl<'a> Row<'a> {
    pub(super) fn text(&self, n: Col) -> Option<&'a str> {
        let a = self.c.get(n)?.as_string::<i32>();
        (!a.is_null(self.r)).then(|| a.value(self.r))
    }
    pub(super) fn is(&self, n: Col, value: &str) -> bool {
        self.c.get(n).is_some_and(|c| {
            let a = c.as_string::<i32>();
            !a.is_null(self.r) && a.value(self.r) == value
        })
    }
    pub(super) fn present(&self, n: Col) -> bool {
        self.c.get(n).is_some_and(|c| {
            let a = c.as_string::<i32>();
            !a.is_null(self.r) && !a.value(self.r).trim().is_empty()
        })
    }
    pub(super) fn flag(&self, n: Col) -> bool {
        self.c.get(n).is_some_and(|c| {
            let a = c.as_boolean();
            !a.is_null(self.r) && a.value(self.r)
        })
    }
    pub(super) fn int(&self, n: Col) -> Option<i64> {
        let a = self.c.get(n)?.as_primitive::<Int64Type>();
        (!a.is_null(self.r)).then(|| a.value(self.r))
    }
    /// An instant as recorded, whatever its date.
    pub(super) fn raw(&self, n: Col) -> Option<i64> {
        let a = self.c.get(n)?.as_primitive::<TimestampMicrosecondType>();
        (!a.is_null(self.r)).then(|| a.value(self.r))
    }
    /// The values of the list in column `items` that the list in column `allowed` lacks;
    /// none when `allowed` is null or empty (not recorded: an IMI actor is registered for at
    /// least one area, and an export without competences must not make every user a finding).
    pub(super) fn outside(&self, items: Col, allowed: Col) -> Vec<String> {
        let list = |c: Col| {
            self.c.get(c).and_then(|a| {
                let a = a.as_list_opt::<i32>()?;
                (!a.is_null(self.r)).then(|| a.value(self.r))
            })
        };
        let (Some(items), Some(allowed)) = (list(items), list(allowed)) else { return Vec::new() };
        if allowed.is_empty() {
            return Vec::new();
        }
        let (items, allowed) = (items.as_string::<i32>(), allowed.as_string::<i32>());
        let allowed: Vec<&str> = allowed.iter().flatten().collect();
        items.iter().flatten().filter(|d| !allowed.contains(d)).map(str::to_owned).collect()
    }

    /// Calls `f` with each responder of the `responders` column (authority, member state,
    /// joined, left), as recorded.
    pub(super) fn responders(&self, mut f: impl FnMut(Option<&'a str>, Option<&'a str>, i64, Option<i64>)) {
        let Some(list) = self.c.get(Col::Responders).and_then(|a| a.as_list_opt::<i32>()) else { return };
        if list.is_null(self.r) {
            return;
        }
        let (start, end) = (list.value_offsets()[self.r] as usize, list.value_offsets()[self.r + 1] as usize);
        let items = list.values().as_struct();
        let text = |i: usize| items.column(i).as_string::<i32>();
        let time = |i: usize| items.column(i).as_primitive::<TimestampMicrosecondType>();
        let (authority, state, joined, left) = (text(0), text(1), time(2), time(3));
        for i in start..end {
            if joined.is_null(i) {
                continue;
            }
            let t = |a: &'a arrow::array::StringArray| (!a.is_null(i)).then(|| a.value(i));
            f(t(authority), t(state), joined.value(i), (!left.is_null(i)).then(|| left.value(i)));
        }
    }

    /// An instant known at the check's instant: left out when dated after it.
    pub(super) fn seen(&self, n: Col) -> Option<i64> {
        self.raw(n).filter(|t| *t <= self.as_of)
    }
}

pub(super) fn utc(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

pub(super) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

/// What turning a row into a subject needs: calendars, the Commission, the options.
pub(super) struct Facts {
    pub(super) calendars: Calendars,
    pub(super) eu: crate::calendar::Calendar,
    pub(super) commission: (Option<String>, Option<String>),
    pub(super) defaults: Defaults,
    pub(super) as_of: i64,
}

impl Facts {
    pub(super) fn load(store: &Store, options: &Options) -> Result<Facts> {
        let mut calendars = Calendars::of(store)?;
        calendars.ensure("EU");
        let mut commission = None;
        for b in store.read(catalog::AUTHORITIES.name)? {
            let columns = Columns::of(&b);
            for r in 0..b.num_rows() {
                let row = Row { c: &columns, r, as_of: options.as_of };
                if let Some(state) = row.text(Col::MemberState) {
                    calendars.ensure(state);
                }
                if row.text(Col::Kind) == Some("commission") {
                    commission = commission.or(row.text(Col::AuthorityId).map(str::to_owned));
                }
            }
        }
        Ok(Facts {
            eu: calendars.get("EU").into_owned(),
            calendars,
            commission: (commission, Some("EU".to_owned())),
            defaults: options.defaults,
            as_of: options.as_of,
        })
    }

    /// The Commission as an actor.
    pub(super) fn commission(&self) -> Actor<'_> {
        (self.commission.0.as_deref(), self.commission.1.as_deref())
    }

    pub(super) fn end(memo: &mut period::Memo, t: i64, len: Length, cal: &crate::calendar::Calendar) -> i64 {
        micros(memo.end(utc(t), len, cal))
    }

    /// The end of a request's period once extended "by two further months" (EUDPR Art.
    /// 14(3), GDPR Art. 12(3)), read in the controller's favour: the later of three months
    /// from receipt, and two months after the end of the first month as Art. 3(4) of
    /// Regulation 1182/71 extended it (the two readings differ by up to three days).
    pub(super) fn extended(memo: &mut period::Memo, received: i64, cal: &crate::calendar::Calendar) -> i64 {
        let three = Facts::end(memo, received, Length::Months(3), cal);
        // The first month ends at 24:00 of its last day: the further months run from that day.
        let first = Facts::end(memo, received, Length::Months(1), cal);
        let further = Facts::end(memo, first - 1, Length::Months(2), cal);
        three.max(further)
    }

    /// The subjects of a row of the facts query for `kind`, added to `out`: one, or none when
    /// it did not exist yet at the check's instant; a request case also gives one `Reply`
    /// per responder who must answer it. Tells whether the row's subject existed.
    pub(super) fn subjects<'a>(
        &'a self,
        kind: Kind,
        row: &Row<'a>,
        memo: &mut period::Memo,
        out: &mut Vec<Subject<'a>>,
    ) -> bool {
        let subject = match kind {
            Kind::Case => self.case(row, memo, out),
            Kind::User => self.user(row, memo),
            Kind::Request => self.request(row, memo),
            Kind::Breach => self.breach(row, memo),
        };
        match subject {
            Some(s) => {
                out.insert(0, s);
                true
            }
            None => false,
        }
    }

    pub(super) fn case<'a>(
        &'a self,
        row: &Row<'a>,
        memo: &mut period::Memo,
        replies: &mut Vec<Subject<'a>>,
    ) -> Option<Subject<'a>> {
        let (id, created) = (row.text(Col::CaseId)?, row.raw(Col::CreatedAt)?);
        if created > self.as_of {
            return None;
        }
        let months =
            row.int(Col::RetentionMonths).or(row.int(Col::DomainRetentionMonths)).unwrap_or(6).clamp(1, 18)
                as u32;
        let requester_state = row.text(Col::RequesterState);
        let requester_cal = self.calendars.get(requester_state.unwrap_or("EU"));
        // Room for every fact a case can have: one small allocation per subject.
        let mut facts = Vec::with_capacity(18);
        facts.extend([
            (Name::PersonalData, Fact::Bool(row.flag(Col::PersonalData))),
            // IMI Art. 14(2): a basis, in a domain whose act provides a repository.
            (
                Name::Repository,
                Fact::Bool(row.present(Col::RepositoryBasis) && row.flag(Col::DomainRepository)),
            ),
            (Name::InactivityJustified, Fact::Bool(row.flag(Col::InactivityJustified))),
            (Name::SpecialCategories, Fact::Bool(row.flag(Col::SpecialCategories))),
            (Name::SpecialCategoriesBasis, Fact::Bool(row.flag(Col::SpecialCategoriesBasis))),
            (Name::SubjectConsent, Fact::Bool(row.flag(Col::SubjectConsent))),
        ]);
        let closed = row.seen(Col::ClosedAt);
        facts.push((Name::Open, Fact::Bool(closed.is_none())));
        let deleted = row.seen(Col::DeletedAt);
        if let Some(c) = closed {
            facts.push((Name::Closed, Fact::Instant(c)));
            facts
                .push((Name::BlockDue, Fact::Instant(Facts::end(memo, c, Length::Months(months), &self.eu))));
            facts.push((Name::DeleteDue, Fact::Instant(Facts::end(memo, c, Length::Years(3), &self.eu))));
            let anniversary = period::anniversary_start(utc(c), 3, &self.eu.zone);
            facts.push((Name::Anniversary, Fact::Instant(micros(anniversary))));
        }
        let block_done = match (row.seen(Col::BlockedAt), deleted) {
            (Some(b), Some(d)) => Some(b.min(d)),
            (b, d) => b.or(d),
        };
        if let Some(t) = block_done {
            facts.push((Name::BlockDone, Fact::Instant(t)));
        }
        if let Some(t) = deleted {
            facts.push((Name::Deleted, Fact::Instant(t)));
        }
        if let Some(t) = row.seen(Col::EarlyDeletionRequestedAt) {
            facts.push((Name::EarlyDeletionRequested, Fact::Instant(t)));
        }
        if closed.is_none() {
            // The last activity known at the check's instant.
            let last = row.seen(Col::LastActivityAt).or_else(|| {
                [Col::CreatedAt, Col::SentAt, Col::AcceptedAt, Col::AnsweredAt]
                    .into_iter()
                    .filter_map(|c| row.seen(c))
                    .max()
            });
            if let Some(l) = last {
                facts.push((
                    Name::InactiveDue,
                    Fact::Instant(Facts::end(memo, l, Length::Months(2), &requester_cal)),
                ));
            }
        }
        if row.is(Col::Procedure, "request")
            && let Some(agreed) = row.raw(Col::DueAt)
        {
            self.replies(row, id, agreed, memo, replies);
        }
        let actors = Actors {
            commission: self.commission(),
            requesting: (row.text(Col::RequestingAuthority), requester_state),
            ..Actors::default()
        };
        Some(Subject { kind: "Case", id, actors, facts, detail: None })
    }

    /// The replies a request case owes (RT-LATE): one per responder holding the `responding`
    /// role when the agreed day ends in its own legal time, or, when none does, per responder
    /// who held it last before that instant. The agreed day is the UTC date of `due_at` (a
    /// bare date is stored as 00:00 UTC of that date).
    pub(super) fn replies<'a>(
        &'a self,
        row: &Row<'a>,
        case: &'a str,
        agreed: i64,
        memo: &mut period::Memo,
        out: &mut Vec<Subject<'a>>,
    ) {
        let day = utc(agreed).date_naive();
        // A responder's end of the agreed day, in its own legal time.
        let mut due_of =
            |state: Option<&str>| memo.end_of_date(day, &self.calendars.get(state.unwrap_or("EU")));
        // Held the role when the agreed day ended where it is.
        let holds = |joined: i64, due: i64, left: Option<i64>| joined <= due && left.is_none_or(|l| due < l);
        // A departure is known once it happened by the check's instant.
        let known = |left: Option<i64>| left.filter(|l| *l <= row.as_of);
        // First pass: does anyone hold it, and, if not, when did the last one leave before?
        let (mut anyone, mut last_left) = (false, None);
        row.responders(|_, state, joined, left| {
            let (due, left) = (due_of(state), known(left));
            if holds(joined, due, left) {
                anyone = true;
            } else if let Some(l) = left.filter(|l| joined <= due && *l <= due) {
                last_left = last_left.max(Some(l));
            }
        });
        if !anyone && last_left.is_none() {
            return;
        }
        let answered = row.seen(Col::AnsweredAt);
        row.responders(|authority, state, joined, left| {
            let (due, left) = (due_of(state), known(left));
            let responsible =
                if anyone { holds(joined, due, left) } else { left == last_left && joined <= due };
            if responsible {
                let mut facts = Vec::with_capacity(2);
                facts.push((Name::AnswerDue, Fact::Instant(due)));
                if let Some(a) = answered {
                    facts.push((Name::Answered, Fact::Instant(a)));
                }
                let actors = Actors { responding: (authority, state), ..Actors::default() };
                out.push(Subject { kind: "Reply", id: case, actors, facts, detail: None });
            }
        });
    }

    pub(super) fn user<'a>(&'a self, row: &Row<'a>, memo: &mut period::Memo) -> Option<Subject<'a>> {
        let id = row.text(Col::UserId)?;
        let registered = row.raw(Col::RegisteredAt)?;
        if registered > self.as_of {
            return None;
        }
        let deactivated = row.seen(Col::DeactivatedAt);
        let state = row.text(Col::AuthorityState);
        // Room for every fact a user can have: one small allocation per subject.
        let mut facts = Vec::with_capacity(7);
        facts.push((Name::Active, Fact::Bool(deactivated.is_none())));
        // Rights in a domain the authority is not competent in; an authority whose domains
        // are not recorded is not judged.
        let outside = row.outside(Col::Domains, Col::AuthorityDomains);
        facts.push((Name::RightsOutside, Fact::Bool(!outside.is_empty())));
        // The finding lists them.
        let detail = (!outside.is_empty()).then(|| (Name::RightsOutside, outside.join(";")));
        if deactivated.is_none() {
            let since = row.seen(Col::LastLogin).map_or(registered, |l| l.max(registered));
            let cal = self.calendars.get(state.unwrap_or("EU"));
            facts.push((
                Name::DormantDue,
                Fact::Instant(Facts::end(memo, since, self.defaults.dormant, &cal)),
            ));
        }
        if let Some(d) = deactivated {
            facts.push((
                Name::BlockDue,
                Fact::Instant(Facts::end(memo, d, self.defaults.user_block, &self.eu)),
            ));
            facts.push((Name::DeleteDue, Fact::Instant(Facts::end(memo, d, Length::Years(3), &self.eu))));
        }
        if let Some(t) = row.seen(Col::BlockedAt) {
            facts.push((Name::Blocked, Fact::Instant(t)));
        }
        if let Some(t) = row.seen(Col::DeletedAt) {
            facts.push((Name::Deleted, Fact::Instant(t)));
        }
        let actors = Actors {
            commission: self.commission(),
            authority: (row.text(Col::AuthorityId), state),
            ..Actors::default()
        };
        Some(Subject { kind: "User", id, actors, facts, detail })
    }

    pub(super) fn request<'a>(&'a self, row: &Row<'a>, memo: &mut period::Memo) -> Option<Subject<'a>> {
        let (id, received) = (row.text(Col::RequestId)?, row.raw(Col::ReceivedAt)?);
        if received > self.as_of {
            return None;
        }
        let state = row.text(Col::ControllerState);
        let cal = self.calendars.get(state.unwrap_or("EU"));
        let responded = row.seen(Col::RespondedAt);
        // The outcome is known once the response is.
        let outcome = responded.and(row.text(Col::Outcome));
        let refused = matches!(outcome, Some("refused" | "no_action"));
        // Room for every fact a request can have: one small allocation per subject.
        let mut facts = Vec::with_capacity(11);
        facts.extend([
            (Name::Regime, Fact::Text(row.text(Col::Regime).unwrap_or_default().to_owned())),
            (Name::Right, Fact::Text(row.text(Col::Right).unwrap_or_default().to_owned())),
            (Name::Refused, Fact::Bool(refused)),
            (Name::RemedyInfoGiven, Fact::Bool(row.flag(Col::RemedyInfoGiven))),
            (Name::MonthDue, Fact::Instant(Facts::end(memo, received, Length::Months(1), &cal))),
            (Name::ThreeMonthDue, Fact::Instant(Facts::extended(memo, received, &cal))),
            (Name::CorrectDue, Fact::Instant(Facts::end(memo, received, Length::Days(30), &cal))),
            (
                Name::WorkingDaysDue,
                Fact::Instant(Facts::end(memo, received, Length::WorkingDays(15), &self.eu)),
            ),
        ]);
        for (fact, column) in
            [(Name::ExtensionNotified, Col::ExtensionNotifiedAt), (Name::Completed, Col::CompletedAt)]
        {
            if let Some(t) = row.seen(column) {
                facts.push((fact, Fact::Instant(t)));
            }
        }
        if let Some(t) = responded {
            facts.push((Name::Responded, Fact::Instant(t)));
        }
        let actors = Actors { controller: (row.text(Col::ControllerId), state), ..Actors::default() };
        Some(Subject { kind: "Request", id, actors, facts, detail: None })
    }

    pub(super) fn breach<'a>(&'a self, row: &Row<'a>, memo: &mut period::Memo) -> Option<Subject<'a>> {
        let (id, aware) = (row.text(Col::BreachId)?, row.raw(Col::AwareAt)?);
        if aware > self.as_of {
            return None;
        }
        let state = row.text(Col::ControllerState);
        let cal = self.calendars.get(state.unwrap_or("EU"));
        let present = |c: Col| row.present(c);
        // Room for every fact a breach can have: one small allocation per subject.
        let mut facts = Vec::with_capacity(14);
        facts.extend([
            (Name::Risk, Fact::Text(row.text(Col::Risk).unwrap_or_default().to_owned())),
            (Name::Exempt, Fact::Bool(row.present(Col::SubjectExemption))),
            (Name::HasDelayReasons, Fact::Bool(present(Col::DelayReasons))),
            (Name::HasNature, Fact::Bool(present(Col::Nature))),
            (Name::HasConsequences, Fact::Bool(present(Col::Consequences))),
            (Name::HasMeasures, Fact::Bool(present(Col::Measures))),
            (Name::HasApproxSubjects, Fact::Bool(row.int(Col::ApproxSubjects).is_some())),
            (Name::HasApproxRecords, Fact::Bool(row.int(Col::ApproxRecords).is_some())),
            (Name::NotifyDue, Fact::Instant(Facts::end(memo, aware, Length::Hours(72), &cal))),
            (Name::DpoDue, Fact::Instant(Facts::end(memo, aware, self.defaults.dpo, &cal))),
            (Name::SubjectsDue, Fact::Instant(Facts::end(memo, aware, self.defaults.subjects, &cal))),
        ]);
        for (fact, column) in [
            (Name::Notified, Col::NotifiedAt),
            (Name::DpoInformed, Col::DpoInformedAt),
            (Name::SubjectsNotified, Col::SubjectsNotifiedAt),
        ] {
            if let Some(t) = row.seen(column) {
                facts.push((fact, Fact::Instant(t)));
            }
        }
        let actors = Actors { controller: (row.text(Col::ControllerId), state), ..Actors::default() };
        Some(Subject { kind: "Breach", id, actors, facts, detail: None })
    }
}
