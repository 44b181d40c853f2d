/*
 * credit_risk.h
 *	  Settings shared across modules.
 */
#ifndef CREDIT_RISK_H
#define CREDIT_RISK_H

#define CR_MAX_THREADS		64

extern int	cr_threads;
extern int	cr_train_memory_kb;
extern bool cr_simd;
extern bool cr_allow_drop;

extern void CrCheckSettings(void);
extern struct config_generic *CrFindSetting(const char *name);

#endif							/* CREDIT_RISK_H */
