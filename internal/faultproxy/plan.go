package faultproxy

import "fmt"

// Direction is one half of a relayed connection.
type Direction int

const (
	// Up is client (gateway) to upstream: commands.
	Up Direction = iota
	// Down is upstream to client: responses.
	Down
)

func (d Direction) String() string {
	if d == Up {
		return "up"
	}
	return "down"
}

// Action is what a fault does.
type Action int

const (
	// Cut closes both sides of the connection with FIN.
	Cut Action = iota
	// Reset closes both sides with RST (SO_LINGER 0).
	Reset
	// Stall stops forwarding in the fault's direction; the other
	// direction keeps flowing.
	Stall
)

func (a Action) String() string {
	switch a {
	case Cut:
		return "cut"
	case Reset:
		return "reset"
	case Stall:
		return "stall"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// Fault is one scripted fault on one connection.
type Fault struct {
	Dir    Direction
	Action Action
	// Match, if set, arms the fault at the first occurrence of these bytes
	// in Dir; After then counts from the first byte of the match. Without
	// Match, After counts from the start of the connection. Bytes are
	// forwarded as soon as they are read, so when a match straddles two
	// reads, the part in the first read has already passed: a fault
	// "before the match" then acts inside it. IMAP peers write a command
	// or a response line in one write, so in practice matches are whole.
	Match []byte
	// After is the number of bytes forwarded before the fault acts (0:
	// before the first byte, or before the match).
	After int64
}

func (f Fault) String() string {
	if f.Match != nil {
		return fmt.Sprintf("%s %s %d bytes after %q", f.Dir, f.Action, f.After, f.Match)
	}
	return fmt.Sprintf("%s %s after %d bytes", f.Dir, f.Action, f.After)
}

// Plan is what happens to one relayed connection. The zero Plan relays
// faithfully.
type Plan struct {
	// Faults are independent; at most one per direction is honoured (the
	// first one listed for that direction).
	Faults []Fault
	// BytesPerSecond throttles each direction (0: unlimited).
	BytesPerSecond int
}

// Planner chooses the plan of connection k (0 for the first accepted).
type Planner func(k int) Plan

// Always returns a Planner giving every connection p.
func Always(p Plan) Planner { return func(int) Plan { return p } }

// Only returns a Planner giving connection k plan p and every other
// connection a faithful relay.
func Only(k int, p Plan) Planner {
	return func(i int) Plan {
		if i == k {
			return p
		}
		return Plan{}
	}
}

// Sequence returns a Planner giving connection k plans[k]; connections
// beyond the list are relayed faithfully.
func Sequence(plans ...Plan) Planner {
	return func(i int) Plan {
		if i < len(plans) {
			return plans[i]
		}
		return Plan{}
	}
}
