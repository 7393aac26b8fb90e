package cluster

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
)

// subscriptionBuffer is how many notifications a subscription holds
// before further ones are dropped: every subscriber also polls, so a
// notification only makes work start sooner.
const subscriptionBuffer = 64

// Notification is one NOTIFY received on the node's session, or a Resync.
type Notification struct {
	Channel, Payload string
	// Resync: the node has just started listening for this subscription
	// (at first, or on a new session after the old one dropped);
	// notifications sent before may have been missed.
	Resync bool
}

// Subscription receives the notifications of one channel.
type Subscription struct {
	n       *Node
	channel string
	c       chan Notification
	ready   bool // guarded by n.mu: told Resync on the current session
}

// Listen subscribes to channel on the node's session; the first
// notification is a Resync, once the session listens. Close it when done.
func (n *Node) Listen(channel string) *Subscription {
	s := &Subscription{n: n, channel: channel, c: make(chan Notification, subscriptionBuffer)}
	n.mu.Lock()
	if n.subs[channel] == nil {
		n.subs[channel] = map[*Subscription]struct{}{}
	}
	n.subs[channel][s] = struct{}{}
	n.mu.Unlock()
	n.wake()
	return s
}

// C delivers the notifications.
func (s *Subscription) C() <-chan Notification { return s.c }

// Close ends the subscription; the node stops listening on the channel
// when no subscription is left.
func (s *Subscription) Close() {
	s.n.mu.Lock()
	if m := s.n.subs[s.channel]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(s.n.subs, s.channel)
		}
	}
	s.n.mu.Unlock()
	s.n.wake()
}

func (s *Subscription) send(nt Notification) {
	select {
	case s.c <- nt:
	default:
	}
}

// deliver hands a notification to the channel's subscribers.
func (n *Node) deliver(nt Notification) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for s := range n.subs[nt.Channel] {
		if s.ready {
			s.send(nt)
		}
	}
}

// syncListens makes the session listen on exactly the subscribed channels,
// and tells each subscription that is new to the session Resync.
func (n *Node) syncListens(ctx context.Context, s *session, ran *bool) error {
	n.mu.Lock()
	var add, remove []string
	for ch := range n.subs {
		if !s.listening[ch] {
			add = append(add, ch)
		}
	}
	for ch := range s.listening {
		if n.subs[ch] == nil {
			remove = append(remove, ch)
		}
	}
	n.mu.Unlock()
	sort.Strings(add)
	for _, ch := range add {
		*ran = true
		if _, err := s.conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("listening on %s: %w", ch, err)
		}
		s.listening[ch] = true
	}
	for _, ch := range remove {
		*ran = true
		if _, err := s.conn.Exec(ctx, "UNLISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return fmt.Errorf("unlistening %s: %w", ch, err)
		}
		delete(s.listening, ch)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch, subs := range n.subs {
		if !s.listening[ch] {
			continue // subscribed since the LISTENs above: next pass
		}
		for sub := range subs {
			if !sub.ready {
				sub.ready = true
				sub.send(Notification{Channel: ch, Resync: true})
			}
		}
	}
	return nil
}
