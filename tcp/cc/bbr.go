package cc

import (
	"math"
	"time"
)

// BBRState is a state of the BBRv3 state machine.
type BBRState uint8

// BBR states (draft-ietf-ccwg-bbr-06 section 5.1).
const (
	BBRStartup BBRState = iota
	BBRDrain
	BBRProbeBWDown
	BBRProbeBWCruise
	BBRProbeBWRefill
	BBRProbeBWUp
	BBRProbeRTT

	bbrStateNone BBRState = 0xff // "None" for undo_state
)

var bbrStateNames = [...]string{"Startup", "Drain", "ProbeBW_DOWN", "ProbeBW_CRUISE", "ProbeBW_REFILL", "ProbeBW_UP", "ProbeRTT"}

func (s BBRState) String() string {
	if int(s) < len(bbrStateNames) {
		return bbrStateNames[s]
	}
	return "BBRState?"
}

// BBRv3 constants (draft-ietf-ccwg-bbr-06 section 2).
const (
	bbrStartupPacingGain = 2.77 // 4*ln(2)
	bbrDrainPacingGain   = 0.5
	bbrDefaultCwndGain   = 2.0
	bbrProbeUpCwndGain   = 2.25
	bbrProbeRTTCwndGain  = 0.5
	bbrPacingMargin      = 0.01 // PacingMarginPercent = 1
	bbrLossThresh        = 0.02
	bbrBeta              = 0.7
	bbrHeadroom          = 0.15
	bbrMinPipeCwnd       = 4 // packets
	bbrExtraAckedWin     = 10
	bbrStartupLossEvents = 6 // BBRStartupFullLossCnt

	// BBRProbeRTTInterval is the time without a new min RTT sample after
	// which BBR enters ProbeRTT.
	BBRProbeRTTInterval = 5 * time.Second
	// BBRProbeRTTDuration is how long ProbeRTT holds the window down.
	BBRProbeRTTDuration = 200 * time.Millisecond
	// bbrMinRTTSlack is the least margin above probe_rtt_min_delay within
	// which an RTT sample still postpones ProbeRTT (updateMinRTT).
	bbrMinRTTSlack = 250 * time.Microsecond
	// BBRMinRTTFilterLen is the BBR.min_rtt window.
	BBRMinRTTFilterLen = 10 * time.Second
)

type bbrAckPhase uint8

const (
	acksInit bbrAckPhase = iota
	acksRefilling
	acksProbeStarting
	acksProbeFeedback
	acksProbeStopping
)

var inf = math.Inf(1)

// BBR is BBRv3 congestion control as specified in draft-ietf-ccwg-bbr-06
// (July 2026), working in packets and packets per second. See doc.go for
// where it deviates from the draft.
type BBR struct {
	mss      int
	cwnd     int
	state    BBRState
	rng      uint64
	now      time.Time
	pacing   float64 // C.pacing_rate, packets/s
	hasRTT   bool
	srtt     rttEWMA
	inflight int // C.inflight after the current ACK

	pacingGain, cwndGain float64

	// round counting
	roundCount         int64
	roundStart         bool
	nextRoundDelivered int64
	delivered          int64 // C.delivered
	appLimitedMark     int64 // MarkConnectionAppLimited (internal)

	// bandwidth model
	maxBwSlots        [2]float64
	cycleCount        uint64
	maxBw             float64
	bw                float64
	bwShortterm       float64
	inflightShortterm float64
	inflightLongterm  float64
	bwLatest          float64
	inflightLatest    float64
	maxInflight       float64
	bdp               float64
	extraAcked        float64
	extraAckedFilter  winMax
	extraAckedStart   time.Time
	extraAckedDeliv   float64

	// rtt model
	minRTT            time.Duration // 0 = infinity
	minRTTStamp       time.Time
	probeRTTMinDelay  time.Duration // 0 = infinity
	probeRTTMinStamp  time.Time
	probeRTTExpired   bool
	probeRTTDoneStamp time.Time
	probeRTTRoundDone bool
	rttRoundMin       time.Duration // least RTT sample of the current round (0 = none)
	rttPrevRoundMin   time.Duration // least RTT sample of the previous round
	rttRoundN         int           // RTT samples in the current round
	idleRestart       bool

	// startup / full pipe
	fullBwReached    bool
	fullBwNow        bool
	fullBw           float64
	fullBwCount      int
	drainStartRound  int64
	lossEventsRound  int
	inLossRecovery   bool
	recoveryRound    int64
	lossRoundStart   bool
	lossRoundDeliv   int64
	isLossInRound    bool
	roundLost        int64   // packets marked lost since the loss round began
	roundLostDeliv   int64   // C.delivered when the loss round began
	roundCE          bool    // an ECN CE echo in the loss round
	lossAvg          float64 // recent loss rate (lossThresh)
	rsAppLimited     bool
	rsValid          bool // the ACK's rate sample is valid (GenerateRateSample returned true)
	rsRate           float64
	rsTxInFlight     float64
	rsLost           float64
	priorCwnd        int
	undoState        BBRState
	undoValid        bool
	undoBwShortterm  float64
	undoInflShort    float64
	undoInflLongterm float64

	// ProbeBW
	ackPhase              bbrAckPhase
	isBwProbeSample       bool
	bwProbeUpAcked        float64
	probeUpAckedPerInc    float64
	bwProbeUpRounds       int
	roundsSinceProbeUp    int64
	bwProbeWait           time.Duration
	cycleStamp            time.Time
	prevProbeTooHigh      bool
	prevProbePrecautonary bool

	cwndLimitedCur, cwndLimitedPrev bool

	onState     func(from, to BBRState) // test hook
	draftMinRTT bool                    // test hook: the draft's strict probe_rtt_min_delay refresh
}

func (b *BBR) setState(s BBRState) {
	if b.onState != nil && s != b.state {
		b.onState(b.state, s)
	}
	b.state = s
}

// NewBBR returns a BBRv3 controller; call Init before use.
func NewBBR() *BBR {
	b := &BBR{}
	b.Init(1460, time.Time{})
	return b
}

// Name implements Controller.
func (b *BBR) Name() string { return "bbr" }

// Seed sets the seed of the generator behind BBR's randomized probing
// times (PickProbeWait). Init seeds it from the time it is given.
func (b *BBR) Seed(s uint64) { b.rng = s }

func (b *BBR) rand() uint64 { // splitmix64
	b.rng += 0x9e3779b97f4a7c15
	z := b.rng
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Init implements Controller (OnInit).
func (b *BBR) Init(mss int, now time.Time) {
	*b = BBR{mss: mss, cwnd: InitialWindow, now: now, rng: uint64(now.UnixNano())}
	b.minRTTStamp = now
	b.probeRTTMinStamp = now
	b.inflightLongterm = inf
	b.probeUpAckedPerInc = inf
	b.extraAckedStart = now
	b.undoState = bbrStateNone
	b.resetCongestionSignals()
	b.resetShortTermModel()
	b.resetFullBW()
	b.initPacingRate()
	b.enterStartup()
}

// State returns the current state.
func (b *BBR) State() BBRState { return b.state }

// MaxBw returns BBR.max_bw in packets per second.
func (b *BBR) MaxBw() float64 { return b.maxBw }

// MinRTT returns BBR.min_rtt (0 if none yet).
func (b *BBR) MinRTT() time.Duration { return b.minRTT }

// InflightLongterm returns BBR.inflight_longterm in packets (+Inf if unset).
func (b *BBR) InflightLongterm() float64 { return b.inflightLongterm }

// InflightShortterm returns BBR.inflight_shortterm in packets (+Inf if unset).
func (b *BBR) InflightShortterm() float64 { return b.inflightShortterm }

// BwShortterm returns BBR.bw_shortterm in packets per second (+Inf if unset).
func (b *BBR) BwShortterm() float64 { return b.bwShortterm }

// Bw returns BBR.bw, the bandwidth the model uses, in packets per second.
func (b *BBR) Bw() float64 { return b.bw }

// FullBwReached reports BBR.full_bw_reached.
func (b *BBR) FullBwReached() bool { return b.fullBwReached }

// PacingGain returns the current pacing gain.
func (b *BBR) PacingGain() float64 { return b.pacingGain }

// Cwnd implements Controller.
func (b *BBR) Cwnd() int { return b.cwnd }

// Ssthresh implements Controller: BBR has no ssthresh.
func (b *BBR) Ssthresh() int { return InfiniteSsthresh }

// PacingRate implements Controller: BBR always paces.
func (b *BBR) PacingRate() int64 { return int64(b.pacing * float64(b.mss)) }

// SendQuantum returns C.send_quantum in bytes: 1 ms at the pacing rate,
// between 2 MSS and 64 KiB.
func (b *BBR) SendQuantum() int {
	q := int(b.pacing * float64(b.mss) / 1000)
	return max(min(q, 64<<10), 2*b.mss)
}

func (b *BBR) initPacingRate() {
	rtt := time.Millisecond
	if b.srtt.srtt > 0 {
		rtt = b.srtt.srtt
	}
	b.pacing = bbrStartupPacingGain * InitialWindow / rtt.Seconds()
}

func (b *BBR) enterStartup() {
	b.setState(BBRStartup)
	b.pacingGain = bbrStartupPacingGain
	b.cwndGain = bbrDefaultCwndGain
}

func (b *BBR) enterDrain() {
	b.setState(BBRDrain)
	b.pacingGain = bbrDrainPacingGain
	b.cwndGain = bbrDefaultCwndGain
	b.drainStartRound = b.roundCount
}

func (b *BBR) resetFullBW() {
	b.fullBw = 0
	b.fullBwCount = 0
	b.fullBwNow = false
}

func (b *BBR) resetCongestionSignals() {
	b.isLossInRound = false
	b.bwLatest = 0
	b.inflightLatest = 0
}

func (b *BBR) resetShortTermModel() {
	b.bwShortterm = inf
	b.inflightShortterm = inf
}

func (b *BBR) startRound() { b.nextRoundDelivered = b.delivered }

// OnAck implements Controller (UpdateOnACK).
func (b *BBR) OnAck(now time.Time, rs *RateSample) {
	b.now = now
	b.srtt.update(rs)
	if !b.hasRTT && rs.RTT > 0 {
		b.hasRTT = true
		if !b.fullBwReached {
			b.initPacingRate()
		}
	}
	if rs.TotalDelivered > b.delivered {
		b.delivered = rs.TotalDelivered
	}
	b.inflight = rs.InFlight
	if rs.RTT > 0 {
		b.rttRoundN++
		if b.rttRoundMin == 0 || rs.RTT < b.rttRoundMin {
			b.rttRoundMin = rs.RTT
		}
	}
	// Rate sample (GenerateRateSample's last steps).
	b.rsRate = 0
	b.rsValid = rs.Interval > 0 && (rs.MinRTT == 0 || rs.Interval >= rs.MinRTT)
	if b.rsValid {
		b.rsRate = float64(rs.Delivered) / rs.Interval.Seconds()
	}
	if b.appLimitedMark != 0 && b.delivered > b.appLimitedMark {
		b.appLimitedMark = 0
	}
	b.rsAppLimited = rs.IsAppLimited || (b.appLimitedMark != 0 && rs.PriorDelivered < b.appLimitedMark)
	b.rsTxInFlight = float64(rs.TxInFlight)
	b.rsLost = float64(rs.LostSinceTx)

	if n := float64(rs.AckedSacked + rs.Losses); n > 0 {
		b.lossAvg += (float64(rs.Losses) - b.lossAvg*min(n, bbrLossAvgPkts)) / bbrLossAvgPkts
	}
	// Per-loss steps for the losses this ACK revealed.
	if rs.Losses > 0 {
		b.noteLoss()
		b.roundLost += int64(rs.Losses)
		if b.isBwProbeSample && b.inflightTooHigh() && b.lossCongestive() {
			b.handleInflightTooHigh()
		}
	}
	limitedNow := rs.PriorInFlight >= b.cwnd || (rs.PriorInFlight == 0 && rs.AckedSacked > 0)

	// UpdateModelAndState.
	b.updateLatestDeliverySignals(rs)
	b.updateCongestionSignals(rs)
	// C.is_cwnd_limited: cwnd was the limit at some point in this or the
	// previous round (like Linux's per-window is_cwnd_limited).
	if b.roundStart {
		b.cwndLimitedPrev, b.cwndLimitedCur = b.cwndLimitedCur, false
	}
	b.cwndLimitedCur = b.cwndLimitedCur || limitedNow
	cwndLimited := b.cwndLimitedCur || b.cwndLimitedPrev
	b.updateACKAggregation(rs)
	b.checkFullBWReached()
	b.checkStartupDone(rs)
	b.checkDrainDone()
	b.updateProbeBWCyclePhase(rs, cwndLimited)
	b.updateMinRTT(rs)
	b.checkProbeRTT(rs)
	b.advanceLatestDeliverySignals(rs)
	b.bw = min(b.maxBw, b.bwShortterm)

	// UpdateControlParameters.
	b.setPacingRateWithGain(b.pacingGain)
	b.setCwnd(rs)
}

func (b *BBR) updateLatestDeliverySignals(rs *RateSample) {
	b.lossRoundStart = false
	// Without a valid rate sample (interval below min_rtt: often the ACK
	// of a spurious retransmission, whose delivered snapshot is from the
	// retransmission a moment ago) there is no observation, as in Linux's
	// BBR; the draft runs these steps on every ACK. Taking such an ACK as
	// the end of a loss round cut the short-term model several times in
	// a few milliseconds during one recovery burst.
	if !b.rsValid {
		return
	}
	b.bwLatest = max(b.bwLatest, b.rsRate)
	b.inflightLatest = max(b.inflightLatest, float64(rs.Delivered))
	if rs.PriorDelivered >= b.lossRoundDeliv {
		b.lossRoundDeliv = b.delivered
		b.lossRoundStart = true
	}
}

func (b *BBR) advanceLatestDeliverySignals(rs *RateSample) {
	if b.lossRoundStart {
		b.bwLatest = b.rsRate
		b.inflightLatest = float64(rs.Delivered)
	}
}

func (b *BBR) updateCongestionSignals(rs *RateSample) {
	// UpdateMaxBw with UpdateRound (a round ends only on a valid sample,
	// as in Linux).
	if b.rsValid && rs.PriorDelivered >= b.nextRoundDelivered {
		b.startRound()
		b.roundCount++
		b.roundsSinceProbeUp++
		b.roundStart = true
		b.rttPrevRoundMin, b.rttRoundMin, b.rttRoundN = b.rttRoundMin, 0, 0
	} else {
		b.roundStart = false
	}
	if b.rsRate > 0 && (b.rsRate >= b.maxBw || !b.rsAppLimited) {
		i := b.cycleCount & 1
		b.maxBwSlots[i] = max(b.maxBwSlots[i], b.rsRate)
		b.maxBw = max(b.maxBwSlots[0], b.maxBwSlots[1])
	}
	if !b.lossRoundStart {
		return
	}
	// AdaptLowerBoundsFromCongestion.
	if !b.isProbingBW() && b.isLossInRound && b.lossCongestive() && b.roundLossHigh() {
		if math.IsInf(b.bwShortterm, 1) {
			b.bwShortterm = b.maxBw
		}
		if math.IsInf(b.inflightShortterm, 1) {
			b.inflightShortterm = float64(b.cwnd)
		}
		b.bwShortterm = max(b.bwLatest, bbrBeta*b.bwShortterm)
		b.inflightShortterm = max(b.inflightLatest, bbrBeta*b.inflightShortterm)
	}
	b.isLossInRound = false
	b.roundCE = false
}

// roundLossHigh reports whether the loss round that just ended lost more
// than lossThresh of the packets it delivered or lost, or saw an ECN CE
// echo, and more than 3 standard deviations above the count the recent
// loss rate predicts. This is a ustack deviation from the draft, whose
// AdaptLowerBoundsFromCongestion cuts bw_shortterm and inflight_shortterm
// after any loss in a round: at 1 % random loss almost every round of a
// 100 Mbit/s, 20 ms path has a loss, at 3 % every round has several, and
// the cuts (to the delivery rate of that round, often ProbeBW_DOWN's
// 90 %) held BBR near 85-88 % of the link. A bottleneck queue overflowing
// under BBR's probing drops a burst, far above the threshold, and still
// triggers the cut.
func (b *BBR) roundLossHigh() bool {
	if b.roundCE {
		return true
	}
	n := float64(b.roundLost + max(b.delivered-b.roundLostDeliv, 0))
	lost := float64(b.roundLost)
	// More losses than the recent rate explains: 3 standard deviations
	// of a Poisson count above its mean, so that one round in ten of a
	// path losing 1 % at random (4 losses where 1.7 are expected) is not
	// taken for congestion.
	expect := min(b.lossAvg, bbrLossThreshMax/2) * n
	return lost > b.lossThresh()*n && lost > expect+3*math.Sqrt(expect)
}

// lossThresh is the loss rate above which losses are congestion, for the
// short-term model (roundLossHigh) and the long-term one (IsInflightTooHigh,
// InflightAtLoss): the draft's BBRLossThresh (2 %), raised to twice the
// path's recent loss rate, at most bbrLossThreshMax. The recent loss rate
// is an EWMA of lost/(lost+delivered) over about bbrLossAvgPkts packets.
// ustack deviation: with the draft's fixed 2 %, random loss of 3 % reads
// as congestion in every probe, and once RTT jitter also makes the queue
// look standing (lossCongestive), inflight_longterm is cut round after
// round (in the simulator, 3 % loss with 3 ms jitter each way: 30 Mbit/s
// of 100). Random loss at a steady rate p raises the threshold to 2p; the
// burst of a queue overflowing under probing (tens of percent of a round)
// stays far above it, and so does a bottleneck that became too slow
// (the cap keeps a long overload from hiding itself).
func (b *BBR) lossThresh() float64 {
	return max(bbrLossThresh, min(2*b.lossAvg, bbrLossThreshMax))
}

const (
	// bbrLossAvgPkts is the length, in packets, of the recent loss-rate
	// average (about a dozen rounds of a 100 Mbit/s, 20 ms path).
	bbrLossAvgPkts = 2048
	// bbrLossThreshMax caps lossThresh.
	bbrLossThreshMax = 0.15
)

func (b *BBR) advanceMaxBwFilter() {
	b.cycleCount++
	b.maxBwSlots[b.cycleCount&1] = 0
	b.maxBw = max(b.maxBwSlots[0], b.maxBwSlots[1])
}

func (b *BBR) updateACKAggregation(rs *RateSample) {
	interval := b.now.Sub(b.extraAckedStart).Seconds()
	expected := b.bw * interval
	if b.extraAckedDeliv <= expected {
		b.extraAckedDeliv = 0
		b.extraAckedStart = b.now
		expected = 0
	}
	b.extraAckedDeliv += float64(rs.AckedSacked)
	extra := min(b.extraAckedDeliv-expected, float64(b.cwnd))
	win := int64(1)
	if b.fullBwReached {
		win = bbrExtraAckedWin
	}
	b.extraAcked = b.extraAckedFilter.update(b.roundCount, extra, win)
}

func (b *BBR) checkFullBWReached() {
	if b.fullBwNow || !b.roundStart || b.rsAppLimited {
		return
	}
	if b.rsRate >= b.fullBw*1.25 {
		b.resetFullBW()
		b.fullBw = b.rsRate
		return
	}
	b.fullBwCount++
	b.fullBwNow = b.fullBwCount >= 3
	if b.fullBwNow {
		b.fullBwReached = true
	}
}

func (b *BBR) checkStartupDone(rs *RateSample) {
	b.checkStartupHighLoss(rs)
	if b.state == BBRStartup && b.fullBwReached {
		b.enterDrain()
	}
}

// checkStartupHighLoss: in fast recovery for a full round, at least
// bbrStartupLossEvents ACKs with losses in the round, loss rate > 2%.
func (b *BBR) checkStartupHighLoss(rs *RateSample) {
	if b.fullBwReached || b.state != BBRStartup {
		return
	}
	if rs.Losses > 0 {
		b.lossEventsRound++
	}
	if b.lossRoundStart && b.inLossRecovery && b.roundCount >= b.recoveryRound+2 &&
		b.lossEventsRound >= bbrStartupLossEvents && b.inflightTooHigh() {
		b.undoState = BBRStartup
		b.fullBwReached = true
		b.inflightLongterm = max(b.bdpMultiple(b.bw, 1), b.inflightLatest)
		b.enterDrain()
		return
	}
	if b.lossRoundStart {
		b.lossEventsRound = 0
	}
}

func (b *BBR) checkDrainDone() {
	if b.state == BBRDrain && (float64(b.inflight) <= b.inflightFor(b.bw, 1) || b.roundCount > b.drainStartRound+3) {
		b.enterProbeBW()
	}
}

func (b *BBR) enterProbeBW() {
	b.cwndGain = bbrDefaultCwndGain
	b.startProbeBWDown()
}

func (b *BBR) startProbeBWDown() {
	b.resetCongestionSignals()
	b.probeUpAckedPerInc = inf
	b.pickProbeWait()
	b.cycleStamp = b.now
	b.ackPhase = acksProbeStopping
	b.startRound()
	b.setState(BBRProbeBWDown)
	b.pacingGain = 0.90
	b.cwndGain = bbrDefaultCwndGain
}

func (b *BBR) startProbeBWCruise() {
	b.setState(BBRProbeBWCruise)
	b.pacingGain = 1
	b.cwndGain = bbrDefaultCwndGain
}

func (b *BBR) startProbeBWRefill() {
	b.resetShortTermModel()
	b.bwProbeUpRounds = 0
	b.bwProbeUpAcked = 0
	b.prevProbePrecautonary = false
	b.ackPhase = acksRefilling
	b.startRound()
	b.setState(BBRProbeBWRefill)
	b.pacingGain = 1
	b.cwndGain = bbrDefaultCwndGain
}

func (b *BBR) startProbeBWUp() {
	b.ackPhase = acksProbeStarting
	b.startRound()
	b.resetFullBW()
	b.fullBw = b.rsRate
	b.setState(BBRProbeBWUp)
	b.pacingGain = 1.25
	b.cwndGain = bbrProbeUpCwndGain
	b.raiseInflightLongtermSlope()
}

func (b *BBR) isInProbeBW() bool {
	return b.state >= BBRProbeBWDown && b.state <= BBRProbeBWUp
}

func (b *BBR) isProbingBW() bool {
	return b.state == BBRStartup || b.state == BBRProbeBWRefill || b.state == BBRProbeBWUp
}

func (b *BBR) updateProbeBWCyclePhase(rs *RateSample, cwndLimited bool) {
	if !b.fullBwReached {
		return
	}
	if b.adaptLongTermModel(rs, cwndLimited) {
		return
	}
	switch b.state {
	case BBRProbeBWDown:
		if b.isTimeToProbeBW() {
			return
		}
		if b.isTimeToCruise() {
			b.startProbeBWCruise()
		}
	case BBRProbeBWCruise:
		b.isTimeToProbeBW()
	case BBRProbeBWRefill:
		if b.roundStart {
			b.isBwProbeSample = true
			b.startProbeBWUp()
		}
	case BBRProbeBWUp:
		if b.isTimeToGoDown(cwndLimited) {
			b.prevProbeTooHigh = false
			b.startProbeBWDown()
		}
	}
}

func (b *BBR) isTimeToCruise() bool {
	if float64(b.inflight) > b.inflightWithHeadroom() {
		return false
	}
	return float64(b.inflight) <= b.inflightFor(b.maxBw, 1)
}

func (b *BBR) isTimeToGoDown(cwndLimited bool) bool {
	if b.prevProbeTooHigh && float64(b.inflight) >= b.inflightLongterm {
		b.prevProbePrecautonary = true
		return true
	}
	if cwndLimited && b.cwndAtLongterm() {
		b.resetFullBW()
		b.fullBw = b.rsRate
	} else if b.fullBwNow {
		return true
	}
	return false
}

func (b *BBR) isTimeToProbeBW() bool {
	if b.now.Sub(b.cycleStamp) > b.bwProbeWait || b.isRenoCoexistenceProbeTime() {
		b.startProbeBWRefill()
		return true
	}
	return false
}

func (b *BBR) pickProbeWait() {
	r := b.rand()
	b.roundsSinceProbeUp = int64(r & 1)
	b.bwProbeWait = 2*time.Second + time.Duration((r>>1)%uint64(time.Second))
}

func (b *BBR) isRenoCoexistenceProbeTime() bool {
	target := min(b.bdpMultiple(b.bw, 1), float64(b.cwnd))
	rounds := min(target, 63)
	return float64(b.roundsSinceProbeUp) >= rounds
}

func (b *BBR) inflightWithHeadroom() float64 {
	if math.IsInf(b.inflightLongterm, 1) {
		return inf
	}
	headroom := max(1, bbrHeadroom*b.inflightLongterm)
	return max(b.inflightLongterm-headroom, bbrMinPipeCwnd)
}

// cwndAtLongterm reports cwnd >= inflight_longterm, the whole packets of
// inflight_longterm being what boundCwndForModel lets cwnd reach: with a
// fractional inflight_longterm (handleInflightTooHigh's 0.7 * target) the
// exact comparison never held, and inflight_longterm could never grow
// again in ProbeBW_UP (a late flow stayed at the first cap it met).
func (b *BBR) cwndAtLongterm() bool {
	return float64(b.cwnd) >= math.Floor(b.inflightLongterm)
}

func (b *BBR) raiseInflightLongtermSlope() {
	growth := float64(uint64(1) << uint(b.bwProbeUpRounds))
	b.bwProbeUpRounds = min(b.bwProbeUpRounds+1, 30)
	b.probeUpAckedPerInc = max(float64(b.cwnd)/growth, 1)
}

func (b *BBR) probeInflightLongtermUpward(rs *RateSample, cwndLimited bool) {
	if !cwndLimited || !b.cwndAtLongterm() {
		return
	}
	b.bwProbeUpAcked += float64(rs.AckedSacked)
	if b.bwProbeUpAcked >= b.probeUpAckedPerInc {
		delta := math.Floor(b.bwProbeUpAcked / b.probeUpAckedPerInc)
		b.bwProbeUpAcked -= delta * b.probeUpAckedPerInc
		b.inflightLongterm += delta
	}
	if b.roundStart {
		b.raiseInflightLongtermSlope()
	}
}

func (b *BBR) adaptLongTermModel(rs *RateSample, cwndLimited bool) bool {
	if b.ackPhase == acksProbeStarting && b.roundStart {
		b.ackPhase = acksProbeFeedback
	}
	if b.ackPhase == acksProbeStopping && b.roundStart {
		b.isBwProbeSample = false
		b.ackPhase = acksInit
		if b.isInProbeBW() && !b.rsAppLimited {
			b.advanceMaxBwFilter()
		}
		if b.isInProbeBW() && b.prevProbePrecautonary && !b.prevProbeTooHigh {
			b.startProbeBWRefill()
			return true
		}
	}
	if !b.inflightTooHigh() {
		if math.IsInf(b.inflightLongterm, 1) {
			return false
		}
		if b.rsTxInFlight > b.inflightLongterm {
			b.inflightLongterm = b.rsTxInFlight
		}
		if b.state == BBRProbeBWUp {
			b.probeInflightLongtermUpward(rs, cwndLimited)
		}
	}
	return false
}

// lossCongestive reports whether losses now come with a standing queue:
// the least RTT sample of the current round (until it has bbrQueueSamples
// samples, of it and the previous round; without samples, the smoothed
// RTT) exceeds min_rtt by more than max(min_rtt/4, 4 ms). This is a ustack deviation
// from the draft. Losses on a path whose queue is empty are not caused by
// this flow's sending rate (random or link-layer loss): cutting
// bw_shortterm/inflight_shortterm or inflight_longterm for them only starves
// the flow (on a 100 Mbit/s, 20 ms path with 1 % random loss the draft's
// rules ratchet the window down round after round, to a fraction of the
// link). Losses from a full bottleneck queue come with the queue's delay,
// and BBR then reacts as the draft says. The margin absorbs millisecond
// timestamp RTT samples, jitter and the queueing of one pacing burst; with
// buffers shallower than that, queue-overflow losses are ignored too, as by
// BBRv1 (Startup's high-loss exit still applies). Without RTT samples every
// loss counts.
// bbrQueueSamples is how many RTT samples of the current round
// lossCongestive wants before it trusts their minimum alone: one late ACK
// (a runtime stall, an ACK after a hole was filled) must not read as a queue.
const bbrQueueSamples = 8

func (b *BBR) lossCongestive() bool {
	r := b.rttRoundMin
	if p := b.rttPrevRoundMin; b.rttRoundN < bbrQueueSamples && p != 0 && (r == 0 || p < r) {
		r = p
	}
	if r == 0 {
		r = b.srtt.srtt
	}
	if b.minRTT == 0 || r == 0 {
		return true
	}
	return r > b.minRTT+max(b.minRTT/4, 4*time.Millisecond)
}

func (b *BBR) inflightTooHigh() bool {
	return b.rsLost > b.rsTxInFlight*b.lossThresh()
}

func (b *BBR) handleInflightTooHigh() {
	b.prevProbeTooHigh = true
	b.isBwProbeSample = false
	if !b.rsAppLimited {
		target := min(b.bdpMultiple(b.bw, 1), float64(b.cwnd))
		b.inflightLongterm = max(b.rsTxInFlight, target*bbrBeta)
	}
	if b.state == BBRProbeBWUp {
		b.undoState = BBRProbeBWUp
		b.startProbeBWDown()
	}
}

func (b *BBR) noteLoss() {
	if !b.isLossInRound {
		b.lossRoundDeliv = b.delivered
		b.roundLostDeliv = b.delivered
		b.roundLost = 0
		// The draft saves the undo state here, at the first loss of every
		// round; ustack saves it once per loss recovery episode (as its
		// section 5.5.11 text says), so a later round of the same episode
		// does not forget an undo_state set by a loss-induced exit.
		if !b.inLossRecovery {
			b.saveStateUponLoss()
		}
	}
	b.isLossInRound = true
}

// LostPacket describes one packet the engine marked lost, for OnPacketLost.
type LostPacket struct {
	TxInFlight   int   // packets in flight when it was sent, including it
	LostSinceTx  int64 // packets marked lost since it was sent, including it
	IsAppLimited bool  // it was sent while app-limited
}

// OnPacketLost is the optional per-loss step (HandleLostPacket): engines
// that can call it for each packet they mark lost give BBR the precise
// in-flight volume at which losses crossed the 2% threshold. Without it,
// BBR uses the ACK's TxInFlight/LostSinceTx when RateSample.Losses > 0.
func (b *BBR) OnPacketLost(now time.Time, p LostPacket) {
	b.now = now
	b.noteLoss()
	if !b.isBwProbeSample {
		return
	}
	b.rsTxInFlight = float64(p.TxInFlight)
	b.rsLost = float64(p.LostSinceTx)
	b.rsAppLimited = p.IsAppLimited
	if b.inflightTooHigh() && b.lossCongestive() {
		// InflightAtLoss with a one-packet "burst".
		prev := b.rsTxInFlight - 1
		lostPrev := b.rsLost - 1
		th := b.lossThresh()
		prefix := (th*prev - lostPrev) / (1 - th)
		b.rsTxInFlight = prev + prefix
		b.handleInflightTooHigh()
	}
}

func (b *BBR) updateMinRTT(rs *RateSample) {
	b.probeRTTExpired = b.now.Sub(b.probeRTTMinStamp) > BBRProbeRTTInterval
	if rs.RTT > 0 && (b.probeRTTMinDelay == 0 || rs.RTT < b.probeRTTMinDelay || b.probeRTTExpired) {
		b.probeRTTMinDelay = rs.RTT
		b.probeRTTMinStamp = b.now
	} else if rs.RTT > 0 && !b.draftMinRTT && rs.RTT <= b.probeRTTMinDelay+max(b.probeRTTMinDelay/64, bbrMinRTTSlack) {
		// ustack deviation: a sample within max(1/64, 250 us) of
		// probe_rtt_min_delay shows the queue empty (at most a couple of
		// packets), which is what ProbeRTT would drain it to: it
		// postpones ProbeRTT without raising the estimate.
		b.probeRTTMinStamp = b.now
	}
	expired := b.now.Sub(b.minRTTStamp) > BBRMinRTTFilterLen
	if b.probeRTTMinDelay > 0 && (b.minRTT == 0 || b.probeRTTMinDelay < b.minRTT || expired) {
		b.minRTT = b.probeRTTMinDelay
		b.minRTTStamp = b.probeRTTMinStamp
	}
}

func (b *BBR) checkProbeRTT(rs *RateSample) {
	if b.state != BBRProbeRTT && b.probeRTTExpired && !b.idleRestart {
		b.setState(BBRProbeRTT)
		b.pacingGain = 1
		b.cwndGain = bbrProbeRTTCwndGain
		b.saveCwnd()
		b.probeRTTDoneStamp = time.Time{}
		b.ackPhase = acksProbeStopping
		b.startRound()
	}
	if b.state == BBRProbeRTT {
		b.handleProbeRTT()
	}
	if rs.Delivered > 0 {
		b.idleRestart = false
	}
}

func (b *BBR) handleProbeRTT() {
	// MarkConnectionAppLimited: ignore low rate samples of ProbeRTT.
	b.appLimitedMark = max(b.delivered+int64(b.inflight), 1)
	if b.probeRTTDoneStamp.IsZero() && float64(b.inflight) <= b.probeRTTCwnd() {
		b.probeRTTDoneStamp = b.now.Add(BBRProbeRTTDuration)
		b.probeRTTRoundDone = false
		b.startRound()
	} else if !b.probeRTTDoneStamp.IsZero() {
		if b.roundStart {
			b.probeRTTRoundDone = true
		}
		if b.probeRTTRoundDone {
			b.checkProbeRTTDone()
		}
	}
}

func (b *BBR) checkProbeRTTDone() {
	if !b.probeRTTDoneStamp.IsZero() && b.now.After(b.probeRTTDoneStamp) {
		b.probeRTTMinStamp = b.now
		b.restoreCwnd()
		b.exitProbeRTT()
	}
}

func (b *BBR) exitProbeRTT() {
	b.resetShortTermModel()
	if b.fullBwReached {
		b.startProbeBWDown()
		b.startProbeBWCruise()
	} else {
		b.enterStartup()
	}
}

func (b *BBR) probeRTTCwnd() float64 {
	return max(b.bdpMultiple(b.bw, bbrProbeRTTCwndGain), bbrMinPipeCwnd)
}

// bdpMultiple is gain * bw * min_rtt in packets (InitialWindow without an
// RTT sample).
func (b *BBR) bdpMultiple(bw, gain float64) float64 {
	if b.minRTT == 0 {
		return InitialWindow
	}
	b.bdp = bw * b.minRTT.Seconds()
	return gain * b.bdp
}

func (b *BBR) quantizationBudget(cap float64) float64 {
	offload := 3 * float64(b.SendQuantum()) / float64(b.mss)
	cap = max(cap, offload, bbrMinPipeCwnd)
	if b.state == BBRProbeBWUp {
		cap += 2
	}
	return cap
}

// inflightFor is Inflight(bw, gain) of the draft.
func (b *BBR) inflightFor(bw, gain float64) float64 {
	return b.quantizationBudget(b.bdpMultiple(bw, gain))
}

func (b *BBR) setPacingRateWithGain(gain float64) {
	rate := gain * b.bw * (1 - bbrPacingMargin)
	if b.fullBwReached || rate > b.pacing {
		b.pacing = rate
	}
}

func (b *BBR) setCwnd(rs *RateSample) {
	b.maxInflight = b.quantizationBudget(b.bdpMultiple(b.bw, b.cwndGain) + b.extraAcked)
	maxInfl := toPkts(b.maxInflight)
	switch {
	case b.fullBwReached:
		b.cwnd = min(b.cwnd+rs.AckedSacked, maxInfl)
	case b.cwnd < maxInfl || b.delivered < InitialWindow:
		b.cwnd = min(b.cwnd+rs.AckedSacked, maxCwndPackets)
	}
	b.cwnd = max(b.cwnd, bbrMinPipeCwnd)
	if b.state == BBRProbeRTT {
		b.cwnd = min(b.cwnd, toPkts(b.probeRTTCwnd()))
	}
	b.boundCwndForModel()
}

func (b *BBR) boundCwndForModel() {
	c := inf
	if b.isInProbeBW() && b.state != BBRProbeBWCruise {
		c = b.inflightLongterm
	} else if b.state == BBRProbeRTT || b.state == BBRProbeBWCruise {
		c = b.inflightWithHeadroom()
	}
	c = min(c, b.inflightShortterm)
	c = max(c, bbrMinPipeCwnd)
	if c < float64(b.cwnd) {
		b.cwnd = int(c)
	}
}

// maxCwndPackets bounds BBR's window (and float to int conversions).
const maxCwndPackets = 1 << 30

// toPkts rounds a model volume up to whole packets, within [0, maxCwndPackets].
func toPkts(f float64) int {
	if !(f < maxCwndPackets) { // also NaN
		return maxCwndPackets
	}
	return max(int(math.Ceil(f)), 0)
}

func (b *BBR) saveCwnd() {
	if !b.inLossRecovery && b.state != BBRProbeRTT {
		b.priorCwnd = b.cwnd
	} else {
		b.priorCwnd = max(b.priorCwnd, b.cwnd)
	}
}

func (b *BBR) restoreCwnd() { b.cwnd = max(b.cwnd, b.priorCwnd) }

func (b *BBR) saveStateUponLoss() {
	b.saveCwnd()
	b.undoValid = true
	b.undoState = bbrStateNone // None
	b.undoBwShortterm = b.bwShortterm
	b.undoInflShort = b.inflightShortterm
	b.undoInflLongterm = b.inflightLongterm
}

// RecoveryCwndOwner is implemented by controllers that set cwnd during
// fast recovery themselves (like Linux's cong_control hook): the engine
// then sends within Cwnd() there instead of PRR's window.
type RecoveryCwndOwner interface {
	OwnsRecoveryCwnd() bool
}

// OwnsRecoveryCwnd implements RecoveryCwndOwner: in fast recovery BBR's
// window stays its model's (max_inflight, bounded by inflight_longterm and
// inflight_shortterm), and pacing spreads retransmissions and new data.
// PRR instead grows the window by one packet per ACK from what is in
// flight: on a lossy path that is in recovery most of the time, that
// window, not BBR's, limited the sending (38 Mbit/s of 100 at 3 % loss).
func (b *BBR) OwnsRecoveryCwnd() bool { return true }

// OnCongestionEvent implements Controller (OnEnterFastRecovery). BBR does
// not cut cwnd here: it adapts its model once per round from the losses
// the rate samples report.
func (b *BBR) OnCongestionEvent(now time.Time, inFlight int) {
	b.now = now
	b.saveCwnd()
	b.saveStateUponLoss()
	b.inLossRecovery = true
	b.recoveryRound = b.roundCount
}

// OnRecoveryEnd implements Controller: cwnd returns to the last known good
// value (bounded by the model on the next ACK). Call it when fast
// recovery or RTO recovery ends.
func (b *BBR) OnRecoveryEnd(now time.Time) {
	b.now = now
	if b.inLossRecovery {
		b.inLossRecovery = false
		b.restoreCwnd()
	}
}

// OnRTO implements Controller (OnEnterRTO): cwnd = 1 (in flight after the
// timeout marks everything lost, plus one).
func (b *BBR) OnRTO(now time.Time, inFlight int) {
	b.now = now
	b.saveCwnd()
	b.saveStateUponLoss()
	b.inLossRecovery = true
	b.recoveryRound = b.roundCount
	b.cwnd = LossWindow
}

// Undo implements Controller (HandleSpuriousLossDetection).
func (b *BBR) Undo() {
	if !b.undoValid {
		return
	}
	b.undoValid = false
	b.inLossRecovery = false
	b.restoreCwnd()
	b.isLossInRound = false
	b.resetFullBW()
	b.bwShortterm = max(b.bwShortterm, b.undoBwShortterm)
	b.inflightShortterm = max(b.inflightShortterm, b.undoInflShort)
	b.inflightLongterm = max(b.inflightLongterm, b.undoInflLongterm)
	switch {
	case b.undoState == BBRStartup && b.state != BBRStartup:
		b.fullBwReached = false
		if b.state != BBRProbeRTT {
			b.enterStartup()
		}
	case b.undoState == BBRProbeBWUp && b.state != BBRProbeBWUp:
		if b.state != BBRProbeRTT {
			b.startProbeBWRefill()
		}
	}
	b.undoState = bbrStateNone
}

// OnIdleRestart implements Controller (HandleRestartFromIdle). BBR keeps
// cwnd; in ProbeBW it paces at exactly BBR.bw, in ProbeRTT it checks whether
// ProbeRTT is done. idle and rto are not used.
func (b *BBR) OnIdleRestart(now time.Time, idle, rto time.Duration) {
	b.now = now
	b.idleRestart = true
	b.extraAckedStart = now
	if b.isInProbeBW() {
		b.setPacingRateWithGain(1)
	} else if b.state == BBRProbeRTT {
		b.checkProbeRTTDone()
	}
}

// OnECE implements Controller: a CE mark counts as a congestion signal for
// the round, like a loss (draft section 3.7).
func (b *BBR) OnECE(now time.Time) {
	b.now = now
	b.noteLoss()
	b.roundCE = true
}

// winMax is a windowed max filter keeping the best three samples of the
// window (Kathleen Nichols' algorithm), time in rounds.
type winMax struct {
	s [3]struct {
		t int64
		v float64
	}
}

func (m *winMax) reset(t int64, v float64) float64 {
	for i := range m.s {
		m.s[i].t, m.s[i].v = t, v
	}
	return v
}

func (m *winMax) update(t int64, v float64, win int64) float64 {
	if v >= m.s[0].v || t-m.s[2].t > win {
		return m.reset(t, v)
	}
	if v >= m.s[1].v {
		m.s[1].t, m.s[1].v = t, v
		m.s[2] = m.s[1]
	} else if v >= m.s[2].v {
		m.s[2].t, m.s[2].v = t, v
	}
	dt := t - m.s[0].t
	switch {
	case dt > win:
		m.s[0], m.s[1] = m.s[1], m.s[2]
		m.s[2].t, m.s[2].v = t, v
		if t-m.s[0].t > win {
			m.s[0], m.s[1] = m.s[1], m.s[2]
		}
	case m.s[1].t == m.s[0].t && dt > win/4:
		m.s[1].t, m.s[1].v = t, v
		m.s[2] = m.s[1]
	case m.s[2].t == m.s[1].t && dt > win/2:
		m.s[2].t, m.s[2].v = t, v
	}
	return m.s[0].v
}
