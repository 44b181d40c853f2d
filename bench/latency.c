/*
 * latency.c: per-call latency and throughput of credit_risk's single-row
 * scoring, against SELECT 1, over libpq.
 *
 *   bench/latency [-c CLIENTS] [-T SECONDS] [-w WARMUP] [-n FRESH]
 *                 [-l LOGISTIC_MODEL] [-g GBM_MODEL] [-t TABLE] [-i ID]
 *                 [-k KEYCOL] [-W WORKLOADS] [CONNINFO]
 *
 * Connects with CONNINFO (default "", so the usual PG* variables apply).
 * CLIENTS threads (default 1) each open their own connection and prepare
 * every statement once.  The workloads then run one at a time: all threads
 * start together, call the workload's prepared statement back to back
 * (one round trip each, parameters in text) for SECONDS (default 10), and
 * record every call's latency.  Before each workload every connection makes
 * WARMUP (default 20) untimed calls, so the numbers are steady state: the
 * model is decoded and cached in every backend.
 *
 * Workloads (-W picks a comma-separated subset, default all):
 *   select1     SELECT 1
 *   lr_array    SELECT credit_risk.cr_predict($1::text, $2::float8[])  (logistic model)
 *   lr_jsonb    SELECT credit_risk.cr_predict($1::text, $2::jsonb)     (logistic model)
 *   gbm_array   the same two with the GBM model
 *   gbm_jsonb
 *
 * The parameter values are one row of TABLE (default
 * credit_risk_bench_score.credit_gbm), the one whose KEYCOL (default id)
 * equals ID (default 12345), read once at start: the array in the order of
 * credit_risk.models.features of each model's serving version, the jsonb
 * object with those features and "customer_id".
 *
 * Printed per workload: calls, TPS, TPS / SELECT 1's TPS, latency p50, p95,
 * p99 and max in microseconds (client side, around PQexecPrepared), errors.
 *
 * Then the first call in a fresh backend: FRESH times (default 20, 0 skips
 * it) a new connection is opened, the GBM array statement prepared
 * (timed apart), and its FIRST execute timed; that call loads the library if
 * the backend has not yet, looks the model up in the registry, decodes it and
 * scores.  The second execute in the same connection is timed too, and, as a
 * reference, the first execute of a prepared SELECT 1 in a fresh connection.
 * Medians (and min / max) over the FRESH connections are printed.
 *
 * Build: make -C bench.  See bench/README.md.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#define MAX_WORKLOADS 5

typedef struct Workload
{
	const char *name;
	const char *sql;
	const char *model;			/* NULL for select1 */
	const char *value;			/* the second parameter's text */
	int			enabled;
} Workload;

typedef struct Result
{
	long		calls;
	long		errors;
	double		seconds;
	double		tps;
	double		p50, p95, p99, max;
} Result;

typedef struct Client
{
	int			id;
	pthread_t	thread;
	PGconn	   *conn;
	/* latencies of the current workload, microseconds */
	double	   *lat;
	long		nlat;
	long		caplat;
	long		errors;
	char		first_error[512];
} Client;

static const char *conninfo = "";
static int	nclients = 1;
static double duration = 10.0;
static int	warmup = 20;
static int	nfresh = 20;
static const char *lr_model = "bench_score_lr";
static const char *gbm_model = "bench_score_gbm";
static const char *table = "credit_risk_bench_score.credit_gbm";
static const char *keycol = "id";
static const char *keyval = "12345";

static Workload workloads[MAX_WORKLOADS];
static int	current;				/* index of the running workload */
static volatile int stop_flag;
static pthread_barrier_t start_barrier;
static pthread_barrier_t done_barrier;
static Client *clients;

static double
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void
die(const char *fmt, const char *a, const char *b)
{
	fprintf(stderr, "latency: ");
	fprintf(stderr, fmt, a, b);
	fprintf(stderr, "\n");
	exit(1);
}

static PGconn *
connect_db(void)
{
	PGconn	   *conn = PQconnectdb(conninfo);

	if (PQstatus(conn) != CONNECTION_OK)
		die("connection failed: %s%s", PQerrorMessage(conn), "");
	return conn;
}

static const char *
stmt_name(int w)
{
	static const char *names[MAX_WORKLOADS] = {"w0", "w1", "w2", "w3", "w4"};

	return names[w];
}

static void
prepare_all(PGconn *conn)
{
	for (int w = 0; w < MAX_WORKLOADS; w++)
	{
		PGresult   *r;

		if (!workloads[w].enabled)
			continue;
		r = PQprepare(conn, stmt_name(w), workloads[w].sql, 0, NULL);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			die("prepare of \"%s\" failed: %s", workloads[w].sql, PQerrorMessage(conn));
		PQclear(r);
	}
}

/* one execute of workload w; returns 1 on success, else copies the error */
static int
exec_one(PGconn *conn, int w, char *err, size_t errlen)
{
	const char *vals[2];
	int			n = 0;
	PGresult   *r;
	int			ok;

	if (workloads[w].model)
	{
		vals[0] = workloads[w].model;
		vals[1] = workloads[w].value;
		n = 2;
	}
	r = PQexecPrepared(conn, stmt_name(w), n, n ? vals : NULL, NULL, NULL, 0);
	ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0);
	if (!ok && err && err[0] == '\0')
		snprintf(err, errlen, "%s", PQresultStatus(r) == PGRES_TUPLES_OK
				 ? "no row or a NULL result\n" : PQerrorMessage(conn));
	PQclear(r);
	return ok;
}

static void *
client_main(void *arg)
{
	Client	   *c = arg;

	for (;;)
	{
		int			w;
		double		deadline;

		pthread_barrier_wait(&start_barrier);
		w = current;
		if (w < 0)
			break;
		c->nlat = 0;
		c->errors = 0;
		c->first_error[0] = '\0';
		for (int i = 0; i < warmup; i++)
			exec_one(c->conn, w, NULL, 0);
		/* everyone warmed up; the main thread starts the clock */
		pthread_barrier_wait(&start_barrier);
		deadline = now_us() + duration * 1e6;
		while (!stop_flag)
		{
			double		t0 = now_us(), t1;
			int			ok = exec_one(c->conn, w, c->first_error, sizeof(c->first_error));

			t1 = now_us();
			if (!ok)
			{
				c->errors++;
				if (PQstatus(c->conn) != CONNECTION_OK)
				{
					PQfinish(c->conn);
					c->conn = connect_db();
					prepare_all(c->conn);
				}
			}
			else
			{
				if (c->nlat == c->caplat)
				{
					c->caplat = c->caplat ? 2 * c->caplat : 65536;
					c->lat = realloc(c->lat, c->caplat * sizeof(double));
					if (!c->lat)
						die("out of memory%s%s", "", "");
				}
				c->lat[c->nlat++] = t1 - t0;
			}
			if (t1 >= deadline)
				break;
		}
		pthread_barrier_wait(&done_barrier);
	}
	return NULL;
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a, y = *(const double *) b;

	return (x > y) - (x < y);
}

static double
pct(const double *sorted, long n, double p)
{
	long		i;

	if (n == 0)
		return 0;
	i = (long) (p * n + 0.999999) - 1;	/* nearest rank */
	if (i < 0)
		i = 0;
	if (i >= n)
		i = n - 1;
	return sorted[i];
}

static Result
run_workload(int w)
{
	Result		res = {0};
	double		t0, t1;
	long		total = 0, k = 0;
	double	   *all;

	current = w;
	stop_flag = 0;
	pthread_barrier_wait(&start_barrier);	/* go: warm-up */
	pthread_barrier_wait(&start_barrier);	/* warmed up: timed run */
	t0 = now_us();
	pthread_barrier_wait(&done_barrier);
	t1 = now_us();

	for (int i = 0; i < nclients; i++)
	{
		total += clients[i].nlat;
		res.errors += clients[i].errors;
		if (clients[i].first_error[0])
			fprintf(stderr, "latency: %s, client %d: %s", workloads[w].name, i,
					clients[i].first_error);
	}
	all = malloc((total ? total : 1) * sizeof(double));
	for (int i = 0; i < nclients; i++)
	{
		memcpy(all + k, clients[i].lat, clients[i].nlat * sizeof(double));
		k += clients[i].nlat;
	}
	qsort(all, total, sizeof(double), cmp_double);
	res.calls = total;
	res.seconds = (t1 - t0) / 1e6;
	res.tps = total / res.seconds;
	res.p50 = pct(all, total, 0.50);
	res.p95 = pct(all, total, 0.95);
	res.p99 = pct(all, total, 0.99);
	res.max = total ? all[total - 1] : 0;
	free(all);
	return res;
}

/* the parameter values from one row of the table, in model feature order */
static char *
fetch_value(PGconn *conn, const char *model, int as_json)
{
	static const char *sql_array =
		"SELECT array_agg((to_jsonb(t) ->> f.name)::float8 ORDER BY f.ord)::text"
		"  FROM (SELECT features FROM credit_risk.models WHERE name = $1"
		"         ORDER BY status = 'champion' DESC, version DESC LIMIT 1) m,"
		"       unnest(m.features) WITH ORDINALITY AS f(name, ord),"
		"       (SELECT * FROM %s WHERE %s::text = $2) t";
	static const char *sql_json =
		"SELECT (jsonb_object_agg(f.name, to_jsonb(t) -> f.name)"
		"        || jsonb_build_object('customer_id', 'C' || $2))::text"
		"  FROM (SELECT features FROM credit_risk.models WHERE name = $1"
		"         ORDER BY status = 'champion' DESC, version DESC LIMIT 1) m,"
		"       unnest(m.features) AS f(name),"
		"       (SELECT * FROM %s WHERE %s::text = $2) t";
	char		sql[1024];
	const char *vals[2] = {model, keyval};
	PGresult   *r;
	char	   *out;

	snprintf(sql, sizeof(sql), as_json ? sql_json : sql_array, table, keycol);
	r = PQexecParams(conn, sql, 2, NULL, vals, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		die("reading the parameter row failed: %s%s", PQerrorMessage(conn), "");
	if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0))
		die("no model \"%s\" or no row with that key in %s", model, table);
	out = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return out;
}

static int
cmp_med(const void *a, const void *b)
{
	return cmp_double(a, b);
}

static void
fresh_first_calls(const char *value)
{
	double	   *conn_t = calloc(nfresh, sizeof(double));
	double	   *prep_t = calloc(nfresh, sizeof(double));
	double	   *first_t = calloc(nfresh, sizeof(double));
	double	   *second_t = calloc(nfresh, sizeof(double));
	double	   *sel1_t = calloc(nfresh, sizeof(double));
	const char *vals[2] = {gbm_model, value};
	const char *sql = "SELECT credit_risk.cr_predict($1::text, $2::float8[])";
	char		first_result[64] = "";

	for (int i = 0; i < nfresh; i++)
	{
		PGconn	   *conn;
		PGresult   *r;
		double		t0 = now_us();

		conn = connect_db();
		conn_t[i] = now_us() - t0;
		t0 = now_us();
		r = PQprepare(conn, "first", sql, 0, NULL);
		prep_t[i] = now_us() - t0;
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			die("prepare failed: %s%s", PQerrorMessage(conn), "");
		PQclear(r);
		for (int k = 0; k < 2; k++)
		{
			t0 = now_us();
			r = PQexecPrepared(conn, "first", 2, vals, NULL, NULL, 0);
			(k ? second_t : first_t)[i] = now_us() - t0;
			if (PQresultStatus(r) != PGRES_TUPLES_OK)
				die("first cr_predict failed: %s%s", PQerrorMessage(conn), "");
			if (i == 0 && k == 0)
				snprintf(first_result, sizeof(first_result), "%s", PQgetvalue(r, 0, 0));
			PQclear(r);
		}
		PQfinish(conn);

		conn = connect_db();
		r = PQprepare(conn, "s1", "SELECT 1", 0, NULL);
		PQclear(r);
		t0 = now_us();
		r = PQexecPrepared(conn, "s1", 0, NULL, NULL, NULL, 0);
		sel1_t[i] = now_us() - t0;
		PQclear(r);
		PQfinish(conn);
	}

	printf("\nfirst call in a fresh connection, %d connections (GBM \"%s\", array form; "
		   "result %s):\n", nfresh, gbm_model, first_result);
	printf("%-40s %10s %10s %10s\n", "", "median us", "min us", "max us");
#define LINE(label, a) do { \
		qsort(a, nfresh, sizeof(double), cmp_med); \
		printf("%-40s %10.0f %10.0f %10.0f\n", label, \
			   nfresh % 2 ? a[nfresh / 2] : (a[nfresh / 2 - 1] + a[nfresh / 2]) / 2, \
			   a[0], a[nfresh - 1]); \
	} while (0)
	LINE("connect (PQconnectdb)", conn_t);
	LINE("prepare cr_predict", prep_t);
	LINE("first execute of cr_predict", first_t);
	LINE("second execute, same connection", second_t);
	LINE("first execute of SELECT 1 (reference)", sel1_t);
#undef LINE
	free(conn_t);
	free(prep_t);
	free(first_t);
	free(second_t);
	free(sel1_t);
}

static void
usage(void)
{
	fprintf(stderr,
			"usage: latency [-c CLIENTS] [-T SECONDS] [-w WARMUP] [-n FRESH]\n"
			"               [-l LOGISTIC_MODEL] [-g GBM_MODEL] [-t TABLE] [-k KEYCOL] [-i ID]\n"
			"               [-W select1,lr_array,lr_jsonb,gbm_array,gbm_jsonb] [CONNINFO]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	int			opt;
	const char *wanted = NULL;
	PGconn	   *conn;
	Result		results[MAX_WORKLOADS];
	int			ran[MAX_WORKLOADS] = {0};
	double		base_tps = 0;

	while ((opt = getopt(argc, argv, "c:T:w:n:l:g:t:k:i:W:h")) != -1)
	{
		switch (opt)
		{
			case 'c': nclients = atoi(optarg); break;
			case 'T': duration = atof(optarg); break;
			case 'w': warmup = atoi(optarg); break;
			case 'n': nfresh = atoi(optarg); break;
			case 'l': lr_model = optarg; break;
			case 'g': gbm_model = optarg; break;
			case 't': table = optarg; break;
			case 'k': keycol = optarg; break;
			case 'i': keyval = optarg; break;
			case 'W': wanted = optarg; break;
			default: usage();
		}
	}
	if (optind < argc)
		conninfo = argv[optind++];
	if (optind < argc || nclients < 1 || duration <= 0 || warmup < 0 || nfresh < 0)
		usage();

	workloads[0] = (Workload) {"select1", "SELECT 1", NULL, NULL, 1};
	workloads[1] = (Workload) {"lr_array", "SELECT credit_risk.cr_predict($1::text, $2::float8[])", lr_model, NULL, 1};
	workloads[2] = (Workload) {"lr_jsonb", "SELECT credit_risk.cr_predict($1::text, $2::jsonb)", lr_model, NULL, 1};
	workloads[3] = (Workload) {"gbm_array", "SELECT credit_risk.cr_predict($1::text, $2::float8[])", gbm_model, NULL, 1};
	workloads[4] = (Workload) {"gbm_jsonb", "SELECT credit_risk.cr_predict($1::text, $2::jsonb)", gbm_model, NULL, 1};
	if (wanted)
	{
		for (int w = 0; w < MAX_WORKLOADS; w++)
		{
			char	   *list = strdup(wanted), *save = NULL;

			workloads[w].enabled = 0;
			for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
				if (strcmp(tok, workloads[w].name) == 0)
					workloads[w].enabled = 1;
			free(list);
		}
	}

	conn = connect_db();
	for (int w = 1; w < MAX_WORKLOADS; w++)
		if (workloads[w].enabled)
			workloads[w].value = fetch_value(conn, workloads[w].model, w % 2 == 0);
	{
		PGresult   *r = PQexec(conn, "SELECT pg_catalog.version()");

		printf("server: %s\n", PQresultStatus(r) == PGRES_TUPLES_OK ? PQgetvalue(r, 0, 0) : "?");
		PQclear(r);
	}
	printf("%d client(s), %d connection(s), %.0f s per workload after %d untimed calls per "
		   "connection; parameters from %s where %s = %s; models \"%s\" (logistic), \"%s\" (GBM)\n",
		   nclients, nclients, duration, warmup, table, keycol, keyval, lr_model, gbm_model);
	PQfinish(conn);

	clients = calloc(nclients, sizeof(Client));
	pthread_barrier_init(&start_barrier, NULL, nclients + 1);
	pthread_barrier_init(&done_barrier, NULL, nclients + 1);
	for (int i = 0; i < nclients; i++)
	{
		clients[i].id = i;
		clients[i].conn = connect_db();
		prepare_all(clients[i].conn);
		if (pthread_create(&clients[i].thread, NULL, client_main, &clients[i]) != 0)
			die("pthread_create failed%s%s", "", "");
	}

	for (int w = 0; w < MAX_WORKLOADS; w++)
	{
		if (!workloads[w].enabled)
			continue;
		results[w] = run_workload(w);
		ran[w] = 1;
		if (w == 0)
			base_tps = results[w].tps;
	}
	current = -1;
	pthread_barrier_wait(&start_barrier);
	for (int i = 0; i < nclients; i++)
	{
		pthread_join(clients[i].thread, NULL);
		PQfinish(clients[i].conn);
		free(clients[i].lat);
	}

	printf("\n%-10s %7s %9s %10s %8s %8s %8s %8s %8s %7s\n", "workload", "clients", "calls",
		   "TPS", "/SELECT1", "p50 us", "p95 us", "p99 us", "max us", "errors");
	for (int w = 0; w < MAX_WORKLOADS; w++)
	{
		Result	   *r = &results[w];
		char		ratio[16];

		if (!ran[w])
			continue;
		if (base_tps > 0)
			snprintf(ratio, sizeof(ratio), "%.2f", r->tps / base_tps);
		else
			snprintf(ratio, sizeof(ratio), "n/a");
		printf("%-10s %7d %9ld %10.0f %8s %8.0f %8.0f %8.0f %8.0f %7ld\n", workloads[w].name,
			   nclients, r->calls, r->tps, ratio, r->p50, r->p95, r->p99, r->max, r->errors);
	}

	if (nfresh > 0)
	{
		if (!workloads[3].value)
		{
			conn = connect_db();
			workloads[3].value = fetch_value(conn, gbm_model, 0);
			PQfinish(conn);
		}
		fresh_first_calls(workloads[3].value);
	}
	return 0;
}
