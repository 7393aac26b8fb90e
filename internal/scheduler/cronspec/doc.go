// Package cronspec parses the schedule of a cron trigger and computes its run
// times. It is pure: no clock, no storage, no goroutines. The scheduler asks it
// for the next tick; the API asks it for the next five to show.
//
// # Syntax
//
// Expressions are robfig/cron/v3 syntax, because that is what README.md
// ("Schedules") promises users: five fields (minute hour day-of-month month day-of-week), or six with a
// leading seconds field; the descriptors @yearly (@annually), @monthly, @weekly,
// @daily (@midnight), @hourly and @every <duration>; and an optional
// CRON_TZ=Area/City (or TZ=) prefix when no timezone is given separately. Month and
// weekday names (jan, mon) are accepted, Sunday is 0, "?" means "*" in the two day
// fields. When both day fields are restricted a day matches either of them, as in
// Vixie cron; robfig also treats a stepped star such as "*/2" as restricted.
//
// A few inputs that robfig accepts with a surprising meaning are rejected instead,
// each with an error naming the field: empty list elements ("1,,2", which robfig
// reads as "never" when the whole field is ","), "*-5" (robfig silently reads "*"),
// steps that cover no second value ("*/90" in minutes is minute 0 to robfig),
// "?" outside the day fields, @every intervals under a second or with a fraction of
// a second (robfig rounds them), and day/month combinations that never happen
// (Feb 30). Errors are *Error values; their text says what is wrong and in which
// field, so the API can return them as a 400 as they are.
//
// # Time zones and daylight saving
//
// A schedule runs on the wall clock of its location (UTC when none is given). The
// wall clock is not a simple function of time: when clocks spring forward an hour
// of readings never happens, and when they fall back an hour of readings happens
// twice. The rules, which robfig's own Next does not follow (it drops the tick in a
// skipped hour and runs a daily tick twice in a repeated one):
//
//   - Skipped readings: a tick whose wall-clock time falls in the gap runs once, at
//     the first instant after the gap (02:30 on the spring-forward day in Berlin or
//     New York runs at 03:00). All ticks inside one gap fold into that single run,
//     which is also the run of 03:00 itself if the schedule has one, so nothing
//     runs twice.
//   - Repeated readings: a schedule that restricts the hour field runs only in the
//     first occurrence (30 1 * * * in New York runs at 01:30 EDT, not again at
//     01:30 EST). A schedule whose hour field is every hour (0 * * * *, */5 * * * *,
//     @hourly, six-field per-second schedules) runs in both occurrences: it is a
//     repeating interval, and skipping the second copy would leave a two-hour hole.
//   - @every is an absolute interval, unaffected by the wall clock: ticks are the
//     multiples of the interval since the Unix epoch, so every node computes the same
//     instants whatever moment it asks from. Use @daily for local midnight.
//
// Times are whole seconds. Next and friends return times in the schedule's
// location, so they print as the user's wall clock.
//
// Time zone data is embedded (time/tzdata), so the answers do not depend on whether
// the host has a zoneinfo database, as in scratch containers.
package cronspec
