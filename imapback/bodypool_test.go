package imapback

import "testing"

// TestBodyClass: every pooled size gets a class whose capacity holds it
// with at most a quarter to spare, classes are dense and ordered, and
// sizes beyond prefetchCap are not pooled.
func TestBodyClass(t *testing.T) {
	seen := map[int]int{}
	for n := 0; n <= maxPooledBody+1; n += 97 {
		i, c := bodyClass(n)
		if n > maxPooledBody {
			if i != -1 {
				t.Fatalf("bodyClass(%d) = %d, want -1 (not pooled)", n, i)
			}
			continue
		}
		if i < 0 || i >= bodyClasses {
			t.Fatalf("bodyClass(%d) index %d, want 0..%d", n, i, bodyClasses-1)
		}
		if c < n || n > minPooledBody && c > n+n/4+1 {
			t.Fatalf("bodyClass(%d) capacity %d, want %d..%d", n, c, n, n+n/4)
		}
		if prev, ok := seen[i]; ok && prev != c {
			t.Fatalf("class %d has capacities %d and %d", i, prev, c)
		}
		seen[i] = c
	}
	if i, c := bodyClass(maxPooledBody); i != bodyClasses-1 || c != maxPooledBody {
		t.Errorf("bodyClass(max) = %d, %d; want %d, %d", i, c, bodyClasses-1, maxPooledBody)
	}
	if len(seen) != bodyClasses {
		t.Errorf("%d classes used, want %d", len(seen), bodyClasses)
	}
	for i := 1; i < bodyClasses; i++ {
		if seen[i] <= seen[i-1] {
			t.Errorf("class %d capacity %d not above class %d's %d", i, seen[i], i-1, seen[i-1])
		}
	}
}

// TestBodyPoolRoundTrip: a recycled buffer comes back with the asked
// length and its class's capacity; foreign buffers are refused.
func TestBodyPoolRoundTrip(t *testing.T) {
	b := getBody(50000)
	_, c := bodyClass(50000)
	if len(b) != 50000 || cap(b) != c {
		t.Fatalf("getBody(50000): len %d cap %d, want 50000 and %d", len(b), cap(b), c)
	}
	putBody(b)
	b2 := getBody(52000)
	if len(b2) != 52000 || cap(b2) != c {
		t.Fatalf("getBody(52000): len %d cap %d, want 52000 and %d", len(b2), cap(b2), c)
	}
	putBody(make([]byte, 50000)) // capacity of no class: dropped
	big := getBody(maxPooledBody + 1)
	if len(big) != maxPooledBody+1 {
		t.Fatalf("getBody(max+1): len %d", len(big))
	}
	putBody(big)
	putBody(nil)
}
