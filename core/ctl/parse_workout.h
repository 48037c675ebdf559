/* parse_workout.h -- `wsyncctl parse-workout`: check a workout text. */
#ifndef WSYNC_CTL_PARSE_WORKOUT_H
#define WSYNC_CTL_PARSE_WORKOUT_H

/*
 * wsyncctl parse-workout [FILE|-] [--json] [--help]
 *
 * argv[0] is "parse-workout".  Reads FILE (stdin when absent or "-"), parses
 * it and prints the structure as a table (or JSON with --json) on stdout.
 * Needs no configuration and no database.  Returns the exit status:
 *   0  parsed (or --help)
 *   1  the file cannot be read, or stdout cannot be written
 *   2  usage error, or the text is not a valid workout; the error is printed
 *      on stderr as "FILE:LINE:COL: message"
 */
int wsync_ctl_parse_workout(int argc, char **argv);

#endif
