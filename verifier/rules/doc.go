// Package rules judges the entries of a Parley log against the agreed
// reporting rules and returns findings: "required X, saw Y" for every
// shortcoming, each with a rule id, a severity, the party concerned and the
// entries concerned.
//
// The engine is pure: it does no I/O, starts no goroutines and reads no
// clock. The caller passes the verified entries (signatures, sequence and
// digests already checked) and the time now; the findings are a
// deterministic function of the set of entries and now. The entries may
// come from several feeds merged in any order: the engine orders each feed
// by seq itself. The sequence rules (SEQ: no gap in a feed; FANOUT: every
// counterpart saw the same digest) belong to the sequence verifier and are
// not judged here.
//
// The engine needs every entry at once. A caller reading a large log adds
// each entry to a [Log] as it reads it, compacted ([Compact]: what the
// rules read of a notification or receipt, about a sixth of the memory
// of a decoded statement), instead of holding a slice of them: the
// evaluation then holds about 345 bytes per activity notification, and the
// findings are the same. [Log.EvaluateEach] hands over the findings one by
// one, for a caller that needs less than the whole list.
//
// The parameters are those of package agreement (agreement.Rules); the
// defaults are given in brackets below. All times are UTC. A day is 24
// hours of UTC time; lead times are exact durations, not calendar dates, so
// 41 days 23 hours is short of 42 days.
//
// # When an entry counts as given (t_given)
//
// An entry counts as given at the earliest received_at among the receipts
// of the other parties (counterparts) that acknowledge it with its exact
// digest; a receipt with another digest does not count, nor does one by the
// sender itself or by someone who is not a party. The sender's own
// issued_at is used instead when it is no later than that earliest receipt
// and at most the clock skew earlier [ClockSkewSeconds 300]: an issued_at
// further back is not believed. As long as no counterpart has receipted the
// entry, it counts as given at its issued_at (RX.receipt reports the
// missing receipts once the receipt window has passed).
//
// # Deadlines and thresholds
//
// A threshold is reached at equality (>=); the constraining provisions of
// Chapter VIII apply only when a threshold is exceeded (>). A requirement
// "by time T" is met by something given at T. A requirement "by the 15th of
// November" is met by anything given before the 16th of November 00:00 UTC.
// A deadline by which nothing was given becomes a finding only once now is
// past it, and then carries the deadline as its time; something given late
// becomes a finding carrying the time it was given. Findings are sorted by
// rule id, party, the (sender, seq) of the entries concerned, and then the
// other fields.
//
// # Activities, amendments and cancellations
//
// A notified activity is an activity notification and the amendments that
// took effect on it. The rules judge the content in effect: the latest
// amendment replaces the whole content (forces, start, end, area, alert
// flag). Lead times count from the t_given of the version from which the
// activity has reached a notification threshold without interruption: the
// original notification if it already did, otherwise the amendment that
// first raised it above a notification threshold. Raising an already
// notifiable activity further (for instance above an observation
// threshold) does not restart the lead time; moving its start earlier
// shortens it.
//
// A cancellation given by the start of the activity withdraws it: no other
// rule applies to it. A cancellation given after the start is reported
// (VD.V.amend, low) and the activity is still judged, since it took place.
// An amendment or cancellation given after the end of the activity is
// reported and not applied.
//
// Designations of activities and calendar entries, and place names, are
// compared case-insensitively, ignoring surrounding spaces.
//
// The thresholds apply to the forces in effect whatever the type of
// activity: troops, battle tanks, armoured combat vehicles (ACVs),
// artillery pieces, fixed-wing sorties, and landing troops. Landing troops
// are the airborne plus amphibious troops, and for an amphibious landing,
// heliborne landing or parachute assault at least its total troops.
//
// # Findings about many activities
//
// A finding about more than 20 activities (a possible split, a missing
// calendar, too many large activities) names the 10 first and the 10 last
// of them, by seq (for VD.VIII.three_years by start, then seq), and says
// how many there are.
//
// # Rules of set "vd2011" (Vienna Document 2011)
//
// A notification threshold is reached when troops >= [NotifyTroops 9,000],
// battle tanks >= [NotifyBattleTanks 250], ACVs >= [NotifyACVs 500],
// artillery >= [NotifyArtillery 250], fixed-wing sorties >=
// [NotifySorties 200] or landing troops >= [NotifyLandingTroops 3,000]. An
// observation threshold is reached when troops >= [ObserveTroops 13,000],
// battle tanks >= [ObserveBattleTanks 300], ACVs >= [ObserveACVs 500],
// artillery >= [ObserveArtillery 250] or landing troops >=
// [ObserveLandingTroops 3,500].
//
// VD.V.lead (violation). A notified activity that is not an alert activity
// and reaches a notification threshold must be given at least
// [LeadTimeDays 42] days before its start: start - t_given >= 42 days,
// t_given counted as described above. Also reported: an activity that
// reaches a notification threshold seen only in an amendment that refers to
// no notification, or listed in the sender's latest calendar for its year
// with no notification of that designation once the lead deadline has
// passed.
//
// VD.V.alert (violation). An alert activity that reaches a notification
// threshold is exempt from the lead time but must be given no later than
// its start plus the clock skew.
//
// VD.V.amend (violation, or low). An amendment or cancellation must refer,
// by target seq, to an earlier notification of the same sender (not to an
// amendment, a calendar, a later or missing entry); it must be given by
// the end of the activity; an amendment of a cancelled activity is
// reported. Low severity: a cancellation given after the start (but by the
// end), and a repeated cancellation.
//
// VD.V.host (violation). When an activity that reaches a notification
// threshold takes place on the territory of another party (named in its
// host_state field, or one of its place names is listed for that party in
// Config.Territory; the host must be a party), that host party must
// notify it too, by the same
// deadline: 42 days before the start, or for an alert activity its start
// plus the clock skew. The host's notification matches when it has the
// same designation, or overlaps in time and shares a place name; its
// forces may be below the thresholds.
//
// VD.VI.invite (violation). A non-alert activity that reaches an
// observation threshold needs an observation invitation (referring to the
// notification or one of its amendments by seq) given at least
// [LeadTimeDays 42] days before the start, that is with a timely
// notification.
//
// VD.VI.alert72 (violation). An alert activity that reaches an observation
// threshold and lasts more than [AlertObserveHours 72] hours (end - start >
// 72 h) needs an observation invitation given by start + 72 h.
//
// VD.VII.calendar (violation). Every party gives its annual calendar for
// year Y by [CalendarMonth 11]/[CalendarDay 15] of year Y-1, judged for
// every Y whose deadline lies after the earliest entry of the log and is
// passed by now. Reported under this rule: the first calendar for Y given
// late, or no calendar at all though the party has notified activities
// (not alert, reaching a notification threshold) starting in Y.
//
// VD.VII.nil (violation). A party with nothing to notify must send an
// explicit nil calendar by the same deadline: reported when there is no
// calendar for Y and no such notified activity (silence), or when the first
// calendar for Y is a nil calendar given late.
//
// VD.VII.incal (low). A non-alert activity that reaches a notification
// threshold must appear, by designation, in a calendar (any version) of its
// sender for the year of its start. Judged once the calendar deadline for
// that year has passed, and only if that deadline lies after the earliest
// entry of the log.
//
// VD.VIII.large (violation). A non-alert activity of more than
// [LargeTroops 40,000] troops or [LargeBattleTanks 900] battle tanks must
// be listed in a calendar for its year given by the calendar deadline
// [LargeAdvanceYears 2] years before the year of its start (15 November of
// Y-2). Judged once that deadline has passed, and only if it lies after the
// earliest entry of the log: a log cannot show what was communicated before
// it began.
//
// VD.VIII.three_years (violation). Per sender, at most [LargeMaxCount 1]
// activities of more than 40,000 troops or 900 battle tanks (alert or not)
// may start in any [LargePerYears 3] consecutive calendar years; each
// activity that brings a window over the limit is reported with the
// activities in that window.
//
// VD.III.consult (violation). A consultation request addressed to another
// party must be answered by that party (a consultation response naming the
// requester and the request seq) within [ConsultReplyHours 48] hours, or
// for a meeting request within [MeetingWithinHours 48] hours, of the
// addressee's earliest receipt of the request (of the request's t_given if
// the addressee never receipted it). The meeting itself is not in the log:
// the rule checks that the addressee answers within that time. Hazardous
// incident reports have no agreed deadline and are not judged.
//
// VD.near (advisory, never a violation). Reported are a declared value in
// effect within [NearMarginPercent 5] percent below a notification or
// observation threshold (limit*(100-5)/100 <= value < limit, e.g. 12,350
// to 12,999 troops against 13,000) when the activity reaches no threshold
// of that level; and activities of one sender that run at the same time
// (their [start, end) periods overlap at one instant; an activity that
// ends at its start runs at no time) at a place of the same name and
// together reach a threshold of a level (notification or observation) that
// none of them reaches alone (a possible split). Reported per level are
// the largest such sets: activities at one place that each reach no
// threshold of the level, run at one instant, and to which no other such
// activity at that place could be added. A set contained in a larger one
// of the same level at another place is not reported on its own; a set
// that is a possible split at several places or at both levels is one
// finding, naming the first of those places in sorted order and every such
// level. A set contained in a larger one of the other level is reported:
// for instance two parts of 5,000 troops split a notifiable activity, and
// with a third part of 9,500 troops an observable one.
//
// [InvitationReplyDays 21] is accepted but not judged: the v1 schema has
// no reply to an invitation.
//
// # Rules of set "missile1988" (1988 ballistic missile launch agreement)
//
// BM.lead (violation). A launch notification must be given at least
// [LeadTimeHours 24] hours before its launch window starts
// (window_start - t_given >= 24 h), and its window must last at most
// [MaxWindowHours 96] hours (window_end - window_start <= 96 h); each is
// reported on its own.
//
// Under "missile1988" no VD rule is judged, and under "vd2011" launch
// notifications are not subject to any rule but RX.receipt.
//
// # Rule of every set
//
// RX.receipt (violation). Every entry except receipts must be acknowledged
// by every other party, with its digest, within the receipt window
// [ReceiptWindowSeconds 3600] of its t_given. A party's acknowledgement
// counts at the later of the received_at it states and the issued_at of the
// receipt that states it, so a receipt published late does not count as
// timely. The window runs from t_given, which is the earliest counterpart
// receipt when the sender's issued_at is not believed: the rule finds the
// counterparts that lag behind the first one, or all of them when none has
// receipted the entry. The finding is about the party that owes the
// receipt; a missing receipt may also mean that the entry never reached
// it.
package rules
