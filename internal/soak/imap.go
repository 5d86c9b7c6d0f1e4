package main

import (
	"context"
	"errors"
	"math/rand/v2"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// imapDevice is an IMAP client on a user's INBOX, bounded by a context.
type imapDevice struct {
	c    *imapclient.Client
	stop func() bool
}

func dialIMAP(ctx context.Context, addr, user, pass string) (*imapDevice, error) {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return nil, err
	}
	d := &imapDevice{c: c, stop: context.AfterFunc(ctx, func() { c.Close() })}
	if err := c.Login(user, pass).Wait(); err != nil {
		d.close()
		return nil, err
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

func (d *imapDevice) close() {
	d.stop()
	d.c.Logout().Wait()
	d.c.Close()
}

// pick chooses a random message and returns its UID and Message-ID.
func (d *imapDevice) pick(r *rand.Rand) (imap.UID, string, error) {
	all := imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}
	list, err := d.c.Fetch(all, &imap.FetchOptions{UID: true}).Collect()
	if err != nil || len(list) == 0 {
		return 0, "", errors.Join(err, errors.New("empty"))
	}
	uid := list[r.IntN(len(list))].UID
	msgs, err := d.c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{
		UID:         true,
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil || len(msgs) != 1 {
		return 0, "", errors.Join(err, errors.New("gone"))
	}
	for _, b := range msgs[0].BodySection {
		return uid, messageID(b.Bytes), nil
	}
	return 0, "", errors.New("no body")
}

func (d *imapDevice) move(uid imap.UID, to string) error {
	_, err := d.c.Move(imap.UIDSetNum(uid), to).Wait()
	return err
}

func (d *imapDevice) flag(uid imap.UID, f imap.Flag) error {
	return d.c.Store(imap.UIDSetNum(uid), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{f}}, nil).Close()
}

func (d *imapDevice) expunge(uid imap.UID) error {
	if err := d.flag(uid, imap.FlagDeleted); err != nil {
		return err
	}
	return d.c.UIDExpunge(imap.UIDSetNum(uid)).Close()
}
