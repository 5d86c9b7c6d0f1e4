package enum

import "testing"

type color string

var colors = []color{"red", "green"}

func TestParse(t *testing.T) {
	var c color
	if err := Parse(&c, []byte("green"), colors); err != nil || c != "green" {
		t.Fatalf("Parse(green): got %q, %v; want green, nil", c, err)
	}
	err := Parse(&c, []byte("blue"), colors)
	if got, want := err.Error(), `"blue" is not one of red | green`; got != want {
		t.Fatalf("Parse(blue): got %q, want %q", got, want)
	}
	if c != "green" {
		t.Fatalf("Parse(blue) changed the value: got %q, want green", c)
	}
}
