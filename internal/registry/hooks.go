package registry

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Hook lets the package that owns a trigger type keep what it installs in
// step with the registry, in the same transaction as the change: a deploy
// whose trigger cannot be installed stores nothing.
type Hook interface {
	// TriggerType is the config.triggers[].type this hook owns.
	TriggerType() string
	// Validate checks one trigger against the database (e.g. that a table
	// exists); return a *ValidationError for a 400.
	Validate(ctx context.Context, tx pgx.Tx, t Trigger, index int) error
	// Sync makes what is installed match fn (its triggers, enabled or not).
	Sync(ctx context.Context, tx pgx.Tx, fn Function) error
	// Remove uninstalls everything for fn, which is being deleted.
	Remove(ctx context.Context, tx pgx.Tx, fn Function) error
}

// AddHook registers h; call before serving.
func (s *Store) AddHook(h Hook) { s.hooks = append(s.hooks, h) }

// AddTriggerType registers a trigger type that needs no hook, only a static
// check (webhook); call before serving.
func (s *Store) AddTriggerType(typ string, v TriggerValidator) {
	if s.validators == nil {
		s.validators = map[string]TriggerValidator{}
	}
	s.validators[typ] = v
}

// TriggerTypes lists the trigger types that hooks own, besides http.
func (s *Store) TriggerTypes() map[string]TriggerValidator {
	m := map[string]TriggerValidator{}
	for typ, v := range s.validators {
		m[typ] = v
	}
	for _, h := range s.hooks {
		m[h.TriggerType()] = func(Trigger, int) error { return nil }
	}
	return m
}

func (s *Store) validateTriggers(ctx context.Context, tx pgx.Tx, cfg Config) error {
	for i, t := range cfg.Triggers {
		for _, h := range s.hooks {
			if h.TriggerType() == t.Type {
				if err := h.Validate(ctx, tx, t, i); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (s *Store) syncHooks(ctx context.Context, tx pgx.Tx, fn Function) error {
	for _, h := range s.hooks {
		if err := h.Sync(ctx, tx, fn); err != nil {
			return fmt.Errorf("installing %s triggers: %w", h.TriggerType(), err)
		}
	}
	return nil
}

func (s *Store) removeHooks(ctx context.Context, tx pgx.Tx, fn Function) error {
	for _, h := range s.hooks {
		if err := h.Remove(ctx, tx, fn); err != nil {
			return fmt.Errorf("removing %s triggers: %w", h.TriggerType(), err)
		}
	}
	return nil
}
