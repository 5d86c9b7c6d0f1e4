package pgtest

import "syscall"

func statUID(st any) uint32 {
	if s, ok := st.(*syscall.Stat_t); ok {
		return s.Uid
	}
	return 0
}
