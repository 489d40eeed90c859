package tcpcopy

import (
	"fmt"
	"net/netip"
	"time"
)

// Dir is a direction of a TCP connection.
type Dir uint8

const (
	ClientToServer Dir = 0
	ServerToClient Dir = 1
)

func (d Dir) String() string {
	if d == ClientToServer {
		return "client->server"
	}
	return "server->client"
}

// Gap is a hole in a reconstructed stream: bytes the peer sent (the
// sequence numbers and the other side's acknowledgements prove it) that the
// capture does not hold. Offset is where the hole sits in the stored stream
// (ClientData or ServerData); the stored bytes around it are NOT contiguous
// on the wire.
type Gap struct {
	Dir    Dir   `json:"dir"`
	Offset int   `json:"offset"`
	Len    int64 `json:"len"`
	Packet int   `json:"packet"` // packet number at which the hole was declared
}

// Exchange is one request and the response that followed it: the client
// bytes sent before the server answered, then the server bytes sent before
// the client spoke again. A server that speaks first (banner) gives an
// exchange with ReqLen 0. Offsets index ClientData and ServerData.
type Exchange struct {
	ReqOff, ReqLen   int
	ReqStart, ReqEnd time.Time // capture times of the first and last request byte
	RespOff, RespLen int
	RespStart        time.Time // capture time of the first response byte (zero if none)
	RespEnd          time.Time
}

// Session is one reconstructed TCP connection.
type Session struct {
	ID                      int // 1-based, in order of the connection's first packet in the capture
	Client, Server          netip.AddrPort
	Start, End              time.Time // first and last packet
	FirstPacket, LastPacket int
	Packets                 int
	Handshake               bool // a SYN or SYN-ACK was seen: the client is the SYN sender
	Midstream               bool // no SYN: the capture started after the connection; roles were guessed
	ClientData, ServerData  []byte
	Exchanges               []Exchange
	Gaps                    []Gap
	ClientFIN, ServerFIN    bool // a FIN was seen from that side
	ClientRST, ServerRST    bool // a RST was seen from that side
	Truncated               bool // more data than Config.MaxSessionBytes: the rest was dropped
	Retransmitted           int  // segments whose bytes (some or all) had been seen already
	OutOfOrder              int  // segments that arrived ahead of a hole and were held
}

// ClientGap reports whether the client->server stream has a hole.
func (s *Session) ClientGap() bool {
	for _, g := range s.Gaps {
		if g.Dir == ClientToServer {
			return true
		}
	}
	return false
}

// ServerGapOffset returns the offset in ServerData of the first hole in
// the server->client stream, or -1 if the stream is complete.
func (s *Session) ServerGapOffset() int {
	for _, g := range s.Gaps {
		if g.Dir == ServerToClient {
			return g.Offset
		}
	}
	return -1
}

// String describes the session in one line.
func (s *Session) String() string {
	return fmt.Sprintf("#%d %v -> %v", s.ID, s.Client, s.Server)
}
