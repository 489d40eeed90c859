//go:build linux

package tcpcopy

import (
	"fmt"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// portFilter returns a classic BPF program for an AF_PACKET SOCK_DGRAM
// socket (data starts at the IP header) that keeps TCP segments with one
// of ports as source or destination. IPv4 fragments after the first are
// dropped; IPv6 packets with extension headers pass (userspace decides).
func portFilter(ports []uint16) ([]bpf.RawInstruction, error) {
	if len(ports) == 0 || len(ports) > 32 {
		return nil, fmt.Errorf("port filter: %d ports (want 1..32)", len(ports))
	}
	type ins struct {
		i      bpf.Instruction
		jt, jf string // labels for JumpIf; "" = next instruction
		label  string
	}
	var p []ins
	add := func(i bpf.Instruction) { p = append(p, ins{i: i}) }
	jump := func(cond bpf.JumpTest, val uint32, jt, jf string) {
		p = append(p, ins{i: bpf.JumpIf{Cond: cond, Val: val}, jt: jt, jf: jf})
	}
	label := func(l string) { p = append(p, ins{label: l}) }
	matchPorts := func(load bpf.Instruction) {
		add(load)
		for _, port := range ports {
			jump(bpf.JumpEqual, uint32(port), "accept", "")
		}
	}
	add(bpf.LoadExtension{Num: bpf.ExtProto})
	jump(bpf.JumpEqual, 0x0800, "v4", "")
	jump(bpf.JumpEqual, 0x86dd, "v6", "drop")
	label("v4")
	add(bpf.LoadAbsolute{Off: 9, Size: 1})
	jump(bpf.JumpEqual, 6, "", "drop")
	add(bpf.LoadAbsolute{Off: 6, Size: 2})
	jump(bpf.JumpBitsSet, 0x1fff, "drop", "")
	add(bpf.LoadMemShift{Off: 0})
	matchPorts(bpf.LoadIndirect{Off: 0, Size: 2})
	matchPorts(bpf.LoadIndirect{Off: 2, Size: 2})
	add(bpf.RetConstant{Val: 0})
	label("v6")
	add(bpf.LoadAbsolute{Off: 6, Size: 1})
	jump(bpf.JumpEqual, 6, "", "accept")
	matchPorts(bpf.LoadAbsolute{Off: 40, Size: 2})
	matchPorts(bpf.LoadAbsolute{Off: 42, Size: 2})
	label("drop")
	add(bpf.RetConstant{Val: 0})
	label("accept")
	add(bpf.RetConstant{Val: 1 << 18})

	// Resolve labels to instruction indexes, then to relative skips.
	pos := map[string]int{}
	var prog []ins
	for _, x := range p {
		if x.label != "" {
			pos[x.label] = len(prog)
			continue
		}
		prog = append(prog, x)
	}
	out := make([]bpf.Instruction, len(prog))
	for i, x := range prog {
		j, ok := x.i.(bpf.JumpIf)
		if !ok {
			out[i] = x.i
			continue
		}
		skip := func(l string) (uint8, error) {
			if l == "" {
				return 0, nil
			}
			d := pos[l] - (i + 1)
			if d < 0 || d > 255 {
				return 0, fmt.Errorf("port filter: jump to %s out of range", l)
			}
			return uint8(d), nil
		}
		var err error
		if j.SkipTrue, err = skip(x.jt); err != nil {
			return nil, err
		}
		if j.SkipFalse, err = skip(x.jf); err != nil {
			return nil, err
		}
		out[i] = j
	}
	return bpf.Assemble(out)
}

// attachFilter attaches a classic BPF program to a socket.
func attachFilter(fd int, raw []bpf.RawInstruction) error {
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]})
}
