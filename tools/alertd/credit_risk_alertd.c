/*
 * credit_risk_alertd
 *	  Forwards credit_risk's alerts to the webhooks of
 *	  credit_risk.alert_channels (Slack-compatible, PagerDuty Events API v2,
 *	  or a plain JSON POST), with retries, and records each outcome in
 *	  credit_risk.alert_deliveries.
 *
 *   credit_risk_alertd [--once] [--retries N] [--retry-delay MS] [--poll S]
 *                      [--timeout S] [--verbose] [CONNINFO]
 *
 * It LISTENs on credit_risk_alerts (cr_monitor NOTIFYs there) and, on each
 * notification, every --poll seconds, and after every (re)connection, sends
 * what credit_risk.alert_outbox lists: the alerts past the watermark that a
 * channel takes and has no delivery row for.  A delivery row is written
 * after each POST, so an alert is sent once per channel whatever restarts
 * in between (only a crash between a POST and its row can repeat one).
 * When the server goes away it reconnects, waiting 1 s, 2 s, 4 s, ... up
 * to 30 s between attempts.  One daemon works per database at a time: the
 * others wait on an advisory lock.  SIGTERM or SIGINT stops it.
 */
#include <curl/curl.h>
#include <errno.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

#define LOCK_KEY	"credit_risk_alertd"
#define BATCH		100			/* outbox rows per query, as its LIMIT says */

typedef struct Options
{
	const char *conninfo;
	bool		once;			/* send what is pending, then exit */
	int			retries;		/* attempts after the first */
	long		retry_delay_ms; /* before the first retry; doubles */
	int			poll_s;			/* look for alerts without a NOTIFY this often */
	long		timeout_s;		/* of one HTTP request */
	bool		verbose;
} Options;

static volatile sig_atomic_t stop_requested = 0;

static void
on_signal(int signo)
{
	stop_requested = 1;
}

static void logmsg(const char *fmt,...) __attribute__((format(printf, 1, 2)));

static void
logmsg(const char *fmt,...)
{
	char		stamp[32];
	time_t		now = time(NULL);
	struct tm	tm;
	va_list		ap;

	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S UTC", &tm);
	fprintf(stderr, "%s credit_risk_alertd: ", stamp);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

/* Sleep ms milliseconds, or less when asked to stop. */
static void
pause_ms(long ms)
{
	while (ms > 0 && !stop_requested)
	{
		long		step = ms < 100 ? ms : 100;
		struct timespec ts = {step / 1000, (step % 1000) * 1000000L};

		nanosleep(&ts, NULL);
		ms -= step;
	}
}

static size_t
discard_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	return size * nmemb;
}

/*
 * POST body (JSON) to url.  True on a 2xx answer; otherwise *error says
 * what went wrong.  *http_status is the answer's status, or 0 without one.
 */
static bool
post_json(const Options *opt, const char *url, const char *body, long *http_status,
		  char *error, size_t errlen)
{
	CURL	   *curl = curl_easy_init();
	struct curl_slist *headers = NULL;
	char		curl_error[CURL_ERROR_SIZE] = "";
	CURLcode	rc;

	*http_status = 0;
	if (curl == NULL)
	{
		snprintf(error, errlen, "curl_easy_init failed");
		return false;
	}
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = curl_slist_append(headers, "User-Agent: credit_risk_alertd");
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, opt->timeout_s);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, opt->timeout_s);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard_body);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
	/* a channel's url is data: only the web's schemes */
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS, (long) (CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif

	rc = curl_easy_perform(curl);
	if (rc == CURLE_OK)
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, http_status);
	curl_slist_free_all(headers);
	curl_easy_cleanup(curl);

	if (rc != CURLE_OK)
	{
		snprintf(error, errlen, "%s", curl_error[0] ? curl_error : curl_easy_strerror(rc));
		return false;
	}
	if (*http_status < 200 || *http_status > 299)
	{
		snprintf(error, errlen, "HTTP status %ld", *http_status);
		return false;
	}
	return true;
}

/* Run sql with params; NULL (and a log line) unless it returned tuples or ran. */
static PGresult *
run(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult   *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);

	if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
	{
		logmsg("query failed: %s", PQerrorMessage(conn));
		PQclear(res);
		return NULL;
	}
	return res;
}

/*
 * Send everything the outbox lists up to the newest alert now; then move
 * the watermark there.  False when the connection failed.
 */
static bool
deliver_pending(PGconn *conn, const Options *opt)
{
	PGresult   *res;
	char		top[32];
	const char *params[1];
	int			sent = 0,
				failed = 0;

	res = run(conn, "SELECT COALESCE(max(id), 0)::text FROM credit_risk.alerts", 0, NULL);
	if (res == NULL)
		return false;
	snprintf(top, sizeof(top), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	params[0] = top;

	while (!stop_requested)
	{
		int			n;

		res = run(conn,
				  "SELECT o.alert_id::text, o.channel_id::text, c.name, o.url,"
				  "       credit_risk.cr_alert_payload(o.alert_id, o.channel_id)::text"
				  "  FROM credit_risk.alert_outbox o"
				  "  JOIN credit_risk.alert_channels c ON c.id = o.channel_id"
				  " WHERE o.alert_id <= $1::bigint"
				  " ORDER BY o.alert_id, o.channel_id LIMIT 100",
				  1, params);
		if (res == NULL)
			return false;
		n = PQntuples(res);
		for (int i = 0; i < n && !stop_requested; i++)
		{
			const char *alert = PQgetvalue(res, i, 0);
			const char *channel = PQgetvalue(res, i, 1);
			const char *name = PQgetvalue(res, i, 2);
			const char *url = PQgetvalue(res, i, 3);
			const char *body = PQgetvalue(res, i, 4);
			long		status = 0;
			char		error[CURL_ERROR_SIZE + 64] = "";
			bool		ok = false;
			int			attempts = 0;
			long		delay = opt->retry_delay_ms;
			char		attempts_text[16];
			char		status_text[16];
			const char *row[6];
			PGresult   *ins;

			while (!stop_requested)
			{
				attempts++;
				ok = post_json(opt, url, body, &status, error, sizeof(error));
				if (ok || attempts > opt->retries)
					break;
				if (opt->verbose)
					logmsg("alert %s to channel \"%s\": attempt %d failed (%s); retrying in %ld ms",
						   alert, name, attempts, error, delay);
				pause_ms(delay);
				delay = delay * 2 > 300000 ? 300000 : delay * 2;
			}
			if (!ok && stop_requested)
				break;			/* not finished: sent again after a restart */

			snprintf(attempts_text, sizeof(attempts_text), "%d", attempts);
			snprintf(status_text, sizeof(status_text), "%ld", status);
			row[0] = alert;
			row[1] = channel;
			row[2] = ok ? "delivered" : "failed";
			row[3] = attempts_text;
			row[4] = status ? status_text : NULL;
			row[5] = ok ? NULL : error;
			ins = PQexecParams(conn,
							   "INSERT INTO credit_risk.alert_deliveries"
							   " (alert_id, channel_id, status, attempts, http_status, error)"
							   " VALUES ($1::bigint, $2::integer, $3, $4::integer, $5::integer, $6)"
							   " ON CONFLICT (alert_id, channel_id) DO NOTHING",
							   6, NULL, row, NULL, NULL, 0);
			if (PQresultStatus(ins) != PGRES_COMMAND_OK)
			{
				logmsg("could not record the delivery of alert %s to channel \"%s\": %s",
					   alert, name, PQerrorMessage(conn));
				PQclear(ins);
				PQclear(res);
				return false;
			}
			PQclear(ins);
			if (ok)
			{
				sent++;
				if (opt->verbose)
					logmsg("alert %s delivered to channel \"%s\" (HTTP %ld, attempt %d)",
						   alert, name, status, attempts);
			}
			else
			{
				failed++;
				logmsg("alert %s to channel \"%s\" failed after %d attempts: %s",
					   alert, name, attempts, error);
			}
		}
		PQclear(res);
		if (n < BATCH)
			break;
	}
	if (stop_requested)
		return true;

	res = run(conn,
			  "INSERT INTO credit_risk.alert_watermark AS w (alert_id) VALUES ($1::bigint)"
			  " ON CONFLICT (only_row) DO UPDATE"
			  "   SET alert_id = GREATEST(w.alert_id, EXCLUDED.alert_id), updated_at = now()",
			  1, params);
	if (res == NULL)
		return false;
	PQclear(res);
	if (sent + failed > 0)
		logmsg("%d delivered, %d failed; watermark at alert %s", sent, failed, top);
	return true;
}

/*
 * Connect, LISTEN and take the daemon's lock, waiting 1 s, 2 s, 4 s ... 30 s
 * between attempts.  NULL when asked to stop (or, with --once, on failure).
 */
static PGconn *
connect_db(const Options *opt)
{
	long		wait_ms = 1000;

	while (!stop_requested)
	{
		PGconn	   *conn = PQconnectdb(opt->conninfo);
		PGresult   *res = NULL;

		if (PQstatus(conn) == CONNECTION_OK)
		{
			res = run(conn,
					  "SELECT count(*) FROM pg_catalog.pg_extension WHERE extname = 'credit_risk'",
					  0, NULL);
			if (res != NULL && strcmp(PQgetvalue(res, 0, 0), "1") != 0)
				logmsg("the database has no credit_risk extension");
			else if (res != NULL)
			{
				PQclear(res);
				res = run(conn, "LISTEN credit_risk_alerts", 0, NULL);
				if (res != NULL)
				{
					PQclear(res);
					/* one daemon per database; the others wait here */
					for (;;)
					{
						res = run(conn, "SELECT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtext('" LOCK_KEY "'))",
								  0, NULL);
						if (res == NULL || strcmp(PQgetvalue(res, 0, 0), "t") == 0 || stop_requested)
							break;
						PQclear(res);
						res = NULL;
						if (opt->once)
						{
							logmsg("another credit_risk_alertd is working on this database");
							break;
						}
						if (opt->verbose)
							logmsg("another credit_risk_alertd is working on this database; waiting");
						pause_ms((long) opt->poll_s * 1000);
					}
					if (res != NULL && strcmp(PQgetvalue(res, 0, 0), "t") == 0)
					{
						PQclear(res);
						logmsg("connected; listening on credit_risk_alerts");
						return conn;
					}
				}
			}
		}
		else
			logmsg("cannot connect: %s", PQerrorMessage(conn));
		if (res != NULL)
			PQclear(res);
		PQfinish(conn);
		if (opt->once)
			return NULL;
		logmsg("connecting again in %ld s", wait_ms / 1000);
		pause_ms(wait_ms);
		wait_ms = wait_ms * 2 > 30000 ? 30000 : wait_ms * 2;
	}
	return NULL;
}

/* Wait for a notification or the poll interval; false when the connection is gone. */
static bool
wait_for_alerts(PGconn *conn, const Options *opt)
{
	int			sock = PQsocket(conn);
	time_t		until = time(NULL) + opt->poll_s;

	while (!stop_requested)
	{
		fd_set		fds;
		struct timeval tv = {1, 0};
		PGnotify   *note;
		bool		notified = false;
		int			rc;

		FD_ZERO(&fds);
		FD_SET(sock, &fds);
		rc = select(sock + 1, &fds, NULL, NULL, &tv);
		if (rc < 0 && errno != EINTR)
		{
			logmsg("select failed: %s", strerror(errno));
			return false;
		}
		if (rc > 0)
		{
			if (!PQconsumeInput(conn))
			{
				logmsg("lost the connection: %s", PQerrorMessage(conn));
				return false;
			}
			while ((note = PQnotifies(conn)) != NULL)
			{
				notified = true;
				PQfreemem(note);
			}
		}
		if (PQstatus(conn) != CONNECTION_OK)
			return false;
		if (notified || time(NULL) >= until)
			return true;
	}
	return true;
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: credit_risk_alertd [--once] [--retries N] [--retry-delay MS] [--poll S]\n"
			"                          [--timeout S] [--verbose] [CONNINFO]\n"
			"Forwards credit_risk alerts to the webhooks in credit_risk.alert_channels.\n"
			"CONNINFO is a libpq connection string (default: the PG* environment).\n"
			"  --once            send what is pending, then exit\n"
			"  --retries N       attempts after a failed POST (default 5)\n"
			"  --retry-delay MS  wait before the first retry; doubles each time (default 1000)\n"
			"  --poll S          look for alerts this often without a NOTIFY (default 60)\n"
			"  --timeout S       of one HTTP request (default 10)\n"
			"  --verbose         log every delivery and retry\n");
}

static bool
parse_int(const char *s, long lo, long hi, long *out)
{
	char	   *end;
	long		v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

int
main(int argc, char **argv)
{
	Options		opt = {"", false, 5, 1000, 60, 10, false};
	struct sigaction sa;
	int			exit_code = 0;

	for (int i = 1; i < argc; i++)
	{
		long		v;
		const char *a = argv[i];

		if (strcmp(a, "--once") == 0)
			opt.once = true;
		else if (strcmp(a, "--verbose") == 0)
			opt.verbose = true;
		else if (strcmp(a, "--help") == 0)
		{
			usage();
			return 0;
		}
		else if (i + 1 < argc && strcmp(a, "--retries") == 0 && parse_int(argv[i + 1], 0, 100, &v))
			opt.retries = (int) v, i++;
		else if (i + 1 < argc && strcmp(a, "--retry-delay") == 0 && parse_int(argv[i + 1], 1, 3600000, &v))
			opt.retry_delay_ms = v, i++;
		else if (i + 1 < argc && strcmp(a, "--poll") == 0 && parse_int(argv[i + 1], 1, 86400, &v))
			opt.poll_s = (int) v, i++;
		else if (i + 1 < argc && strcmp(a, "--timeout") == 0 && parse_int(argv[i + 1], 1, 600, &v))
			opt.timeout_s = v, i++;
		else if (a[0] != '-' && i == argc - 1)
			opt.conninfo = a;
		else
		{
			fprintf(stderr, "credit_risk_alertd: bad argument \"%s\"\n", a);
			usage();
			return 1;
		}
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
	{
		fprintf(stderr, "credit_risk_alertd: curl_global_init failed\n");
		return 1;
	}

	while (!stop_requested)
	{
		PGconn	   *conn = connect_db(&opt);
		bool		alive;

		if (conn == NULL)
		{
			exit_code = stop_requested ? 0 : 2;
			break;
		}
		alive = deliver_pending(conn, &opt);
		if (opt.once)
		{
			exit_code = alive ? 0 : 2;
			PQfinish(conn);
			break;
		}
		while (alive && !stop_requested && wait_for_alerts(conn, &opt))
			alive = deliver_pending(conn, &opt);
		PQfinish(conn);
		if (!stop_requested)
			logmsg("connection lost; reconnecting");
	}
	curl_global_cleanup();
	logmsg("stopped");
	return exit_code;
}
