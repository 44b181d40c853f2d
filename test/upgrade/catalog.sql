-- Everything that makes up the installed credit_risk extension, one line
-- per fact, in an order that does not depend on how it was installed: a
-- fresh install and an updated one must print the same lines.
WITH members AS (
    SELECT d.classid, d.objid
      FROM pg_catalog.pg_depend d
      JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
     WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass
       AND d.deptype = 'e' AND e.extname = 'credit_risk'
), rels AS (
    SELECT c.oid, c.relname, c.relkind, c.relacl
      FROM pg_catalog.pg_class c JOIN members m
        ON m.classid = 'pg_catalog.pg_class'::regclass AND m.objid = c.oid
)
SELECT line FROM (
    -- every member object by its identity
    SELECT 'member ' || (pg_catalog.pg_identify_object(m.classid, m.objid, 0)).type || ' '
           || (pg_catalog.pg_identify_object(m.classid, m.objid, 0)).identity AS line
      FROM members m
    UNION ALL
    -- functions: the whole definition (arguments, defaults, result,
    -- language, volatility, parallel label, settings, body) and grants
    SELECT 'function ' || p.oid::pg_catalog.regprocedure::text || E'\n'
           || pg_catalog.pg_get_functiondef(p.oid)
           || E'\n  acl ' || COALESCE(p.proacl::text, 'default')
           || ' cost ' || p.procost || ' rows ' || p.prorows
      FROM pg_catalog.pg_proc p JOIN members m
        ON m.classid = 'pg_catalog.pg_proc'::regclass AND m.objid = p.oid
     WHERE p.prokind <> 'a'
    UNION ALL
    -- columns in their order, with type, NOT NULL and default
    SELECT pg_catalog.format('column %s.%s %s %s %s %s', r.relname, a.attnum, a.attname,
               pg_catalog.format_type(a.atttypid, a.atttypmod),
               CASE WHEN a.attnotnull THEN 'not null' ELSE 'null' END,
               COALESCE(pg_catalog.pg_get_expr(ad.adbin, ad.adrelid), ''))
      FROM rels r
      JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_catalog.pg_attrdef ad ON ad.adrelid = r.oid AND ad.adnum = a.attnum
    UNION ALL
    SELECT pg_catalog.format('relation %s kind %s acl %s comment %s', r.relname, r.relkind,
               COALESCE(r.relacl::text, 'default'),
               COALESCE(pg_catalog.obj_description(r.oid, 'pg_class'), ''))
      FROM rels r
    UNION ALL
    SELECT pg_catalog.format('constraint %s.%s %s', r.relname, c.conname,
               pg_catalog.pg_get_constraintdef(c.oid))
      FROM rels r JOIN pg_catalog.pg_constraint c ON c.conrelid = r.oid
    UNION ALL
    SELECT pg_catalog.format('index %s', pg_catalog.pg_get_indexdef(i.indexrelid))
      FROM rels r JOIN pg_catalog.pg_index i ON i.indrelid = r.oid
    UNION ALL
    SELECT pg_catalog.format('trigger %s enabled %s', pg_catalog.pg_get_triggerdef(t.oid), t.tgenabled)
      FROM rels r JOIN pg_catalog.pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
    UNION ALL
    SELECT pg_catalog.format('storage %s.%s %s', r.relname, a.attname, a.attstorage)
      FROM rels r
      JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE r.relkind = 'r'
    UNION ALL
    SELECT pg_catalog.format('view %s %s', r.relname, pg_catalog.pg_get_viewdef(r.oid))
      FROM rels r WHERE r.relkind = 'v'
    UNION ALL
    SELECT pg_catalog.format('event trigger %s on %s tags %s function %s enabled %s',
               t.evtname, t.evtevent, t.evttags, t.evtfoid::pg_catalog.regproc, t.evtenabled)
      FROM pg_catalog.pg_event_trigger t JOIN members m
        ON m.classid = 'pg_catalog.pg_event_trigger'::regclass AND m.objid = t.oid
    UNION ALL
    -- what pg_dump keeps
    SELECT 'dumped ' || c.relname || ' where ' || COALESCE(e.extcondition[i], '')
      FROM pg_catalog.pg_extension e
     CROSS JOIN LATERAL pg_catalog.generate_subscripts(e.extconfig, 1) i
      JOIN pg_catalog.pg_class c ON c.oid = e.extconfig[i]
     WHERE e.extname = 'credit_risk'
    UNION ALL
    -- rows the extension itself ships
    SELECT pg_catalog.format('builtin rule %s %s %s %s %s %s', r.name, r.metric, r.comparison,
               r.threshold, r.severity, r.enabled)
      FROM credit_risk.alert_rules r WHERE r.builtin
    UNION ALL
    SELECT 'schema acl ' || COALESCE(n.nspacl::text, 'default')
      FROM pg_catalog.pg_namespace n WHERE n.nspname = 'credit_risk'
) facts
ORDER BY line;
