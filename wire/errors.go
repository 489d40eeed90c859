package wire

import "errors"

// Parse errors. Parsers return one of these (possibly wrapped); test with
// errors.Is. Every one of them means "drop the packet".
var (
	ErrTruncated        = errors.New("wire: packet truncated")
	ErrVersion          = errors.New("wire: wrong IP version")
	ErrHeaderLen        = errors.New("wire: bad header length")
	ErrTotalLen         = errors.New("wire: bad total length")
	ErrBufferTooSmall   = errors.New("wire: buffer too small")
	ErrAddress          = errors.New("wire: address family mismatch")
	ErrTooLong          = errors.New("wire: packet too long")
	ErrExtHeader        = errors.New("wire: malformed IPv6 extension header")
	ErrHopByHopNotFirst = errors.New("wire: IPv6 hop-by-hop header not first")
	ErrTooManyExt       = errors.New("wire: too many IPv6 extension headers")
	ErrFragment         = errors.New("wire: packet is a fragment")
	ErrDataOffset       = errors.New("wire: bad TCP data offset")
	ErrOptionLength     = errors.New("wire: bad TCP option length")
	ErrOptionTruncated  = errors.New("wire: TCP option runs past the header end")
	ErrOptionsTooLong   = errors.New("wire: TCP options longer than 40 bytes")
)
