#include <sqlite3.h>

/// sqlite3_db_config is variadic, which Swift cannot call: a fixed-argument
/// wrapper for the one option used (recovery turns the live database's triggers off).
static inline int bosbackup_enable_triggers(sqlite3 *db, int enable) {
    return sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, enable, (int *)0);
}
