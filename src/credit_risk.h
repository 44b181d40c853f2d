/*
 * credit_risk.h
 *	  Settings and small numeric helpers shared across modules.
 */
#ifndef CREDIT_RISK_H
#define CREDIT_RISK_H

#include <math.h>

#define CR_MAX_THREADS		64

extern int	cr_threads;
extern int	cr_train_memory_kb;
extern int	cr_histogram_message_kb;
extern int	cr_explain_memory_kb;
extern int	cr_simd;				/* CrSimd */
extern bool cr_allow_drop;

/* credit_risk.simd: the batch tree scorer's instructions */
typedef enum CrSimd
{
	CR_SIMD_OFF,				/* scalar code */
	CR_SIMD_AVX2,
	CR_SIMD_AVX512,
	CR_SIMD_AUTO				/* the widest the CPU has */
} CrSimd;

/* in forest.c */
extern bool CrCpuHasSimd(CrSimd simd);
extern CrSimd CrSimdPath(void);

/* the probability of a margin (log-odds) */
static inline double
CrSigmoid(double margin)
{
	return 1.0 / (1.0 + exp(-margin));
}

/* a probability kept this far from 0 and 1 wherever its log is taken */
#define CR_PROB_EPS			1e-15

static inline double
CrClampProbability(double p)
{
	return Min(Max(p, CR_PROB_EPS), 1.0 - CR_PROB_EPS);
}

extern void CrCheckSettings(void);
extern struct config_generic *CrFindSetting(const char *name);

#endif							/* CREDIT_RISK_H */
