// Package cc implements TCP congestion control for the ustack engine.
//
// Controllers are plain values driven by the engine: one RateSample per ACK
// that delivers data, explicit events (congestion, RTO, undo, idle restart,
// ECE) and explicit times. They never read a clock, start goroutines or
// allocate per ACK. Windows are counted in packets (segments), like Linux.
//
// Available controllers (New, Names):
//
//   - "cubic" (the default, New("")): CUBIC, RFC 9438, with Linux defaults:
//     beta = 717/1024, C = 0.4, fast convergence and the Reno-friendly
//     region on, HyStart++ (RFC 9406) in the initial slow start.
//   - "reno": Reno/NewReno congestion control, RFC 5681.
//   - "bbr": BBRv3 as specified in draft-ietf-ccwg-bbr-06 (6 July 2026),
//     see the BBR section below.
//
// # Common behaviour (Reno and CUBIC)
//
// Initial window 10 packets (RFC 6928), ssthresh "infinite". Slow start adds
// AckedSacked packets per ACK up to ssthresh (RFC 3465 byte counting with no
// L limit, as Linux); the leftover goes to congestion avoidance, which adds
// one packet per cwnd packets acked, carrying the remainder between ACKs
// (Linux snd_cwnd_cnt). The window grows only when the flow is
// cwnd-limited, using the RFC 7661 test 2*PriorInFlight >= cwnd (Linux uses
// its own is_cwnd_limited tracking), and not during fast recovery
// (RateSample.InRecovery).
//
// OnCongestionEvent (fast retransmit, SACK/RACK loss) cuts ssthresh and sets
// cwnd = ssthresh at once. Linux instead lowers cwnd gradually with PRR
// (RFC 6937); the PRR type is a helper the engine can use for that, and
// OnRecoveryEnd then sets cwnd = ssthresh as Linux tcp_end_cwnd_reduction.
// OnRTO sets cwnd = 1 (the loss window); a repeated RTO with no delivery in
// between keeps ssthresh (RFC 5681 section 3.1). Undo restores
// cwnd = max(cwnd, prior) and ssthresh = max(ssthresh, prior) from before the
// last reduction (as Linux tcp_undo_cwnd_reduction; RFC 5682/RFC 4015 style
// response). OnECE reduces like a congestion event (RFC 3168).
//
// OnIdleRestart(now, idle, rto) implements RFC 5681 section 4.1 / RFC 7661
// the way Linux tcp_cwnd_restart does: ssthresh = max(ssthresh, 3/4 cwnd),
// then cwnd halves once per RTO of idle time but not below the restart
// window min(IW, cwnd). Nothing happens when idle <= rto.
//
// # Reno
//
// ssthresh = max(FlightSize/2, 2) on fast retransmit and RTO, FlightSize
// being the inFlight argument (RFC 5681 eq. 4). There is no "+3" window
// inflation: the engine's pipe accounting (SACK) covers it.
//
// # CUBIC
//
// On a congestion event W_max = cwnd (or cwnd*(1+beta)/2 with fast
// convergence when cwnd < W_max), ssthresh = cwnd = max(cwnd*beta, 2).
// Deviation from RFC 9438: the cut is computed from cwnd like Linux, not
// from flight size (the RFC allows both). The epoch starts at the first ACK
// in congestion avoidance; K = cbrt((W_max - cwnd_epoch)/C) (0 when
// cwnd_epoch >= W_max, as Linux). Each ACK moves cwnd by
// (target - cwnd)/cwnd per packet acked, target = W_cubic(t + minRTT)
// clamped to [cwnd, 1.5 cwnd] (RFC 9438 4.2 uses RTT; Linux uses min RTT).
// The Reno-friendly estimate W_est grows by alpha = 3(1-beta)/(1+beta) per
// window, and by 1 once W_est >= cwnd_prior (RFC 9438 4.3; Linux keeps
// alpha); when W_cubic(t) < W_est cwnd = W_est. When an ACK arrives while
// the flow is not cwnd-limited the epoch is shifted forward by the time
// since the last ACK so the curve does not run ahead (RFC 9438 5.8; Linux
// does this on CA_EVENT_TX_START). Undo also restores W_max and cwnd_prior
// (RFC 9438 4.9) and starts a new epoch (the RFC restores K, epoch_start and
// W_est too). OnIdleRestart takes the idle time out of the
// epoch (even with rto = 0), and starts a new epoch if it reduced cwnd. After an RTO the
// window slow-starts to ssthresh and the next epoch aims at the W_max set by
// the timeout, as Linux does; RFC 9438 4.8 instead uses K = 0 and
// W_max = cwnd at the start of that epoch.
//
// HyStart++ (RFC 9406, constants MIN_RTT_THRESH 4 ms, MAX_RTT_THRESH 16 ms,
// MIN_RTT_DIVISOR 8, N_RTT_SAMPLE 8, CSS_GROWTH_DIVISOR 4, CSS_ROUNDS 5,
// L = 8 when not paced) replaces Linux's classic HyStart (ACK train + delay).
// It runs only in the initial slow start. Rounds are counted with delivery
// counts: a round ends when an ACK delivers a packet sent after the round
// began (RateSample.PriorDelivered >= TotalDelivered at round start). CSS
// rounds are counted from the first round end after entering CSS; after
// CSS_ROUNDS of them ssthresh = cwnd and CUBIC's congestion avoidance starts
// (K = 0 since no W_max is known).
//
// # Pacing
//
// LinuxPacingRate computes Linux's sk_pacing_rate for non-BBR controllers:
// mss * max(cwnd, inFlight) / srtt * ratio, ratio 200 %
// (tcp_pacing_ss_ratio) while cwnd < ssthresh/2 and 120 %
// (tcp_pacing_ca_ratio) otherwise. Reno and CUBIC return it from PacingRate
// only after SetPacing(true) (the Pacer interface); by default they return 0
// (no pacing), as Linux paces them only under fq or SO_MAX_PACING_RATE. srtt
// is RateSample.SRTT, or an RFC 6298 EWMA of RateSample.RTT when the engine
// leaves SRTT zero.
//
// # BBR
//
// BBR follows the pseudocode of draft-ietf-ccwg-bbr-06 (Startup, Drain,
// ProbeBW_DOWN/CRUISE/REFILL/UP, ProbeRTT; max_bw filter over two ProbeBW
// cycles, min_rtt over 10 s, ProbeRTT after 5 s without a lower RTT sample
// for 200 ms plus a round at cwnd = max(BDP/2, 4); short-term and long-term
// (inflight_longterm) models; 2 % loss threshold; extra_acked aggregation
// estimate; undo), with these choices and deviations:
//
//   - Units are packets and packets per second (the draft recommends bytes);
//     PacingRate converts with the MSS given to Init.
//   - The delivery-rate sampler (draft section 4.1) lives in the engine;
//     BBR reads RateSample. It rejects samples whose Interval is below
//     MinRTT, as GenerateRateSample does. The draft's
//     MarkConnectionAppLimited in ProbeRTT is emulated inside BBR (samples
//     of packets sent before the mark count as app-limited).
//   - C.is_cwnd_limited is true when PriorInFlight >= cwnd on some ACK of
//     the current or the previous round (Linux tracks it per window).
//   - Per-loss steps: with PacketLossObserver.OnPacketLost the engine gives
//     the exact per-packet HandleLostPacket (InflightAtLoss with one-packet
//     "bursts"). Without it, an ACK with Losses > 0 runs NoteLoss and the
//     inflight-too-high check on that ACK's TxInFlight/LostSinceTx.
//   - The undo state is saved once per loss recovery episode
//     (OnCongestionEvent/OnRTO, or the first loss outside recovery), not at
//     the first loss of every round as the pseudocode's NoteLoss does, so a
//     later lossy round does not erase an undo_state set by a loss exit.
//   - Startup's loss exit needs 6 ACKs reporting losses in the round (the
//     draft counts discontiguous lost ranges) after a full round in fast
//     recovery, and the 2 % check on the ACK's TxInFlight/LostSinceTx.
//   - PickProbeWait uses a splitmix64 generator seeded from Init's time
//     (Seed overrides), so runs on a virtual clock are reproducible.
//   - The send quantum is 1 ms at the pacing rate in [2 MSS, 64 KiB] and the
//     offload budget 3 quanta, as the draft says for TCP; ustack has no TSO.
//   - OnECE counts a CE mark as a loss signal for the round (section 3.7
//     requires treating CE as congestion, without specifying more).
//   - OnRTO sets cwnd = 1 (in flight after an RTO is 0 in practice).
//   - Ssthresh reports InfiniteSsthresh (BBR has none).
//   - cwnd is whole packets while inflight_longterm can be fractional
//     (0.7 * target after a too-high probe); "cwnd >= inflight_longterm"
//     (ProbeInflightLongtermUpward, IsTimeToGoDown) compares cwnd with
//     its whole packets, the most boundCwndForModel lets cwnd reach.
//     The exact comparison never held after such a cut, so ProbeBW_UP
//     never raised inflight_longterm again: a BBR flow starting 300 ms
//     after another stayed at the cap it met in its first probe (sim,
//     issue's path, 25 s: 79.5 / 15.7 Mbit/s, Jain 0.690; with the fix
//     62.7 / 32.7, 0.910; 2 s stagger 68.5 / 31.1, 0.876 -> 65.4 / 36.2,
//     0.923). Single flows at 0/0.1/1/3 % loss are unchanged.
//
// Deviations for lossy paths (draft-ietf-ccwg-bbr-06 sections 5.5.10.2
// to 5.5.10.4, AdaptLowerBoundsFromCongestion, IsInflightTooHigh and
// UpdateLatestDeliverySignals). The draft reacts to every loss: any loss
// in a round cuts bw_shortterm/inflight_shortterm, and 2 % loss in a
// probe caps inflight_longterm. On the path (100 Mbit/s, 20 ms
// RTT, 250-packet tail-drop queue) with random loss that kept BBR well
// below Linux's BBR (in the simulator 85.6 Mbit/s at 1 % loss, where
// Linux, whose mainline BBR is still v1-like and ignores loss, reached
// 90.9 in real time). ustack keeps the draft's model and changes only
// what counts as a congestion signal:
//
//   - Standing queue (lossCongestive): a loss counts as congestion, for
//     the short-term model and for inflight_longterm, only when the least
//     RTT sample of the current round (or of the previous round while the
//     current one has fewer than 8 samples; else the smoothed RTT) exceeds
//     min_rtt by more than max(min_rtt/4, 4 ms). Losses on an empty queue
//     are not caused by this flow's rate. The margin absorbs millisecond
//     timestamp RTT samples, jitter and one pacing burst; in buffers
//     shallower than that BBR, like BBRv1, ignores queue-overflow losses
//     except for Startup's high-loss exit. Without RTT samples every loss
//     counts.
//   - Loss threshold (lossThresh): the draft's fixed BBRLossThresh of
//     2 % becomes max(2 %, min(2 * recent loss rate, 15 %)), the recent
//     rate being an EWMA of lost/(lost+delivered) over about 2048
//     packets. It applies to IsInflightTooHigh and InflightAtLoss (the
//     long-term model) and to the short-term model below. Random loss at
//     a steady rate p moves the threshold to 2p; a queue overflowing under
//     probing drops tens of percent of a round and stays far above it;
//     the cap keeps a long overload (a bottleneck that got 10x slower)
//     from hiding itself. With the fixed 2 %, 3 % random loss plus 3 ms
//     of RTT jitter each way (which makes the queue look standing) cut
//     inflight_longterm round after round: 30.7 Mbit/s of 100 in the
//     simulator, 88.6 with this rule.
//   - Loss rate of the round (roundLossHigh): the short-term cut
//     (bw_shortterm, inflight_shortterm) needs the loss round to have
//     lost more than lossThresh of its packets and more than 3 standard
//     deviations above the count the recent loss rate (at most 7.5 %)
//     predicts; the draft cuts after any loss in a round. At 1 % random
//     loss almost every round of the path has a loss, and the
//     cuts (to the delivery rate of that round, often ProbeBW_DOWN's
//     90 %) held BBR near 85 % of the link. An ECN CE echo in the round
//     always counts.
//   - No observation without a valid rate sample: an ACK whose sample
//     interval is below min_rtt (in practice the ACK of a spurious
//     retransmission, whose delivered snapshot is a moment old) ends
//     neither a round nor a loss round and does not feed bw_latest or
//     inflight_latest, as in Linux's BBR (interval_us = -1). The draft
//     runs these steps on every ACK; here such ACKs split one recovery
//     burst into many tiny "loss rounds", each cutting bw_shortterm by
//     0.7.
//   - Fast recovery: BBR owns the window (RecoveryCwndOwner): the engine
//     sends within Cwnd() in recovery, not PRR's window, like Linux's
//     cong_control hook (PRR's window, growing one packet per ACK from
//     what is in flight, held BBR to 38 Mbit/s of 100 at 3 % loss on a
//     path that is in recovery most of the time). The draft's packet
//     conservation on entering recovery (cwnd = inflight + newly acked
//     for the first round) is not implemented, for the same reason:
//     cwnd stays the model's max_inflight, bounded by the long- and
//     short-term models, and pacing spreads retransmissions and new data.
//
// Deviation for ProbeRTT (section 5.3.4, UpdateMinRTT): an RTT sample
// within max(probe_rtt_min_delay/64, 250 us) of probe_rtt_min_delay also
// refreshes probe_rtt_min_stamp (without raising the estimate), so a flow
// whose queue empties in every ProbeBW cycle, as BBRv3's does when alone,
// is not sent into ProbeRTT every 5 s: such a sample shows the queue
// already at the couple of packets ProbeRTT would drain it to. The draft
// refreshes only on a strictly lower sample; on the path in the
// simulator, where the sample that set min_rtt (the ACK of two back-to-back
// initial-window packets) is never met exactly again, that cost 200 ms at
// half the BDP every 5 s (94.6 instead of 95.7 Mbit/s at 0 % loss). Under
// a standing queue of another flow the samples stay above the slack and
// ProbeRTT runs as the draft says. (Test hook draftMinRTT turns the slack
// off for the draft's state-machine test.)
//
// The engine paces payload bytes (as Linux's internal pacing), the unit
// of BBR's delivery-rate samples, so pacing_rate = bw means goodput = bw.
// With that and the rules above, the simulator (sim TestPathSweep, 10 s,
// seeds 1-3) gives 95.7/95.7/94.6/95.8 Mbit/s at 0/0.1/1/3 % loss on the
// issue's path, against 91.7/91.1/85.6/91.2 before (CUBIC: 96.5 at 0 %).
//
// # Contract notes
//
// OnRTO(now, inFlight) and OnIdleRestart(now, idle, rto) take more
// arguments than the first team contract (OnRTO(now), OnIdleRestart(now)):
// the controller cannot know the flight size or the idle time otherwise.
// RateSample has extra optional fields (SRTT, TxInFlight, LostSinceTx).
package cc
