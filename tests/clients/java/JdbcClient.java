// The Arrow Flight SQL JDBC driver (org.apache.arrow:flight-sql-jdbc-driver 18.3.0,
// what DBeaver, DataGrip and Java applications use) driven against a sluice server by
// tests/python/test_client_jdbc.py. Run as a single-file program (docs/clients.md):
//
//   java --add-opens=java.base/java.nio=ALL-UNNAMED -Duser.timezone=UTC \
//        -cp .deps/flight-sql-jdbc-driver.jar tests/clients/java/JdbcClient.java URL COMMAND [ARGS]
//
// Commands (each prints one JSON object on stdout; a failure prints {"error": ...}):
//   query SQL              the answer: column names and types, rows (values as text,
//                          timestamps as Unix microseconds, binary as 0x hex)
//   metadata               every no-argument DatabaseMetaData method (exceptions named),
//                          a few values, and the catalog methods that take arguments
//   prepared SQL [LONG]    PreparedStatement: parameter count and types, then the
//                          answer with LONG bound to parameter 1 (or NULL without LONG)
//   stream SQL BLOCK       a streaming query (SETTINGS stream = true) read until a row
//                          of block >= BLOCK, then Statement.cancel()
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.ParameterMetaData;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.Statement;
import java.sql.Timestamp;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

public class JdbcClient {
  public static void main(String[] args) throws Exception {
    String url = args[0];
    String command = args[1];
    Map<String, Object> out;
    Connection conn = null;
    try {
      conn = DriverManager.getConnection(url);
      switch (command) {
        case "query":
          out = query(conn, args[2]);
          break;
        case "metadata":
          out = metadata(conn);
          break;
        case "prepared":
          out = prepared(conn, args[2], args.length > 3 ? Long.valueOf(args[3]) : null);
          break;
        case "stream":
          out = stream(conn, args[2], Long.parseLong(args[3]));
          break;
        default:
          throw new IllegalArgumentException("unknown command " + command);
      }
    } catch (Exception e) {
      out = error(e);
    }
    if (conn != null) {
      try {
        conn.close();
      } catch (Exception e) {
        out.put("close_error", error(e));
      }
    }
    System.out.println(json(out));
    System.exit(0);  // the driver's gRPC threads would keep the JVM alive a while
  }

  static Map<String, Object> error(Throwable e) {
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("error", e.getClass().getName() + ": " + e.getMessage());
    List<String> causes = new ArrayList<>();
    for (Throwable c = e.getCause(); c != null && causes.size() < 5; c = c.getCause()) {
      causes.add(c.getClass().getName() + ": " + c.getMessage());
    }
    m.put("causes", causes);
    return m;
  }

  static Object value(ResultSet rs, int i) throws Exception {
    int type = rs.getMetaData().getColumnType(i);
    if (type == java.sql.Types.TIMESTAMP || type == java.sql.Types.TIMESTAMP_WITH_TIMEZONE) {
      // getObject of a TIMESTAMP_WITH_TIMEZONE column throws "not implemented" (Avatica,
      // driver 18.3.0); getTimestamp works, and is right only in a JVM running in UTC.
      Timestamp t = rs.getTimestamp(i);
      if (t == null) return null;
      return t.toInstant().getEpochSecond() * 1_000_000L + t.toInstant().getNano() / 1000;
    }
    Object v = rs.getObject(i);
    if (v == null) return null;
    if (v instanceof byte[]) {
      StringBuilder sb = new StringBuilder("0x");
      for (byte b : (byte[]) v) sb.append(String.format("%02x", b));
      return sb.toString();
    }
    if (v instanceof BigDecimal) return ((BigDecimal) v).toPlainString();
    return v.toString();
  }

  // Reads and closes `rs` (an unclosed ResultSet makes the driver's Connection.close()
  // fail with "Memory was leaked by query").
  static Map<String, Object> readAll(ResultSet rs) throws Exception {
    try (ResultSet closing = rs) {
      return read(rs);
    }
  }

  static Map<String, Object> read(ResultSet rs) throws Exception {
    ResultSetMetaData md = rs.getMetaData();
    List<Object> columns = new ArrayList<>();
    for (int i = 1; i <= md.getColumnCount(); i++) {
      Map<String, Object> c = new LinkedHashMap<>();
      c.put("name", md.getColumnName(i));
      c.put("type", md.getColumnTypeName(i));
      c.put("jdbc_type", md.getColumnType(i));
      columns.add(c);
    }
    List<Object> rows = new ArrayList<>();
    while (rs.next()) {
      List<Object> row = new ArrayList<>();
      for (int i = 1; i <= md.getColumnCount(); i++) row.add(value(rs, i));
      rows.add(row);
    }
    Map<String, Object> m = new LinkedHashMap<>();
    m.put("columns", columns);
    m.put("rows", rows);
    return m;
  }

  static Map<String, Object> query(Connection conn, String sql) throws Exception {
    try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(sql)) {
      return readAll(rs);
    }
  }

  static Map<String, Object> metadata(Connection conn) throws Exception {
    DatabaseMetaData md = conn.getMetaData();
    Map<String, Object> methods = new LinkedHashMap<>();
    Method[] all = DatabaseMetaData.class.getMethods();
    Arrays.sort(all, Comparator.comparing(Method::getName));
    for (Method m : all) {
      if (m.getParameterCount() != 0 || Modifier.isStatic(m.getModifiers())) continue;
      try {
        Object v = m.invoke(md);
        if (v instanceof ResultSet) {
          v = "rows:" + ((List<?>) readAll((ResultSet) v).get("rows")).size();
        } else if (v instanceof Connection) {
          v = "connection";
        }
        methods.put(m.getName(), v == null ? null : v.toString());
      } catch (java.lang.reflect.InvocationTargetException e) {
        methods.put(m.getName(), error(e.getCause()));
      }
    }
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("methods", methods);
    Map<String, Object> calls = new LinkedHashMap<>();
    calls.put("tables", readAll(md.getTables(null, "eth_rpc", "%", null)));
    calls.put("columns", readAll(md.getColumns(null, "eth_rpc", "blocks", "%")));
    calls.put("primary_keys", readAll(md.getPrimaryKeys(null, "eth_rpc", "blocks")));
    calls.put("imported_keys", readAll(md.getImportedKeys(null, "eth_rpc", "blocks")));
    calls.put("exported_keys", readAll(md.getExportedKeys(null, "eth_rpc", "blocks")));
    calls.put("cross_reference",
        readAll(md.getCrossReference(null, "eth_rpc", "blocks", null, "eth_rpc", "logs")));
    calls.put("type_info", readAll(md.getTypeInfo()));
    // SQL_SUPPORTS_CONVERT, as JDBC asks it: (from, to) pairs in java.sql.Types.
    int[] types = {java.sql.Types.BIGINT, java.sql.Types.VARCHAR, java.sql.Types.DATE,
        java.sql.Types.TIMESTAMP, java.sql.Types.VARBINARY, java.sql.Types.DECIMAL};
    Map<String, Object> convert = new LinkedHashMap<>();
    for (int from : types) {
      for (int to : types) convert.put(from + "->" + to, md.supportsConvert(from, to));
    }
    calls.put("supports_convert", convert);
    out.put("calls", calls);
    return out;
  }

  static Map<String, Object> prepared(Connection conn, String sql, Long param) throws Exception {
    Map<String, Object> out = new LinkedHashMap<>();
    try (PreparedStatement ps = conn.prepareStatement(sql)) {
      ParameterMetaData pmd = ps.getParameterMetaData();
      out.put("parameter_count", pmd.getParameterCount());
      List<Object> types = new ArrayList<>();
      for (int i = 1; i <= pmd.getParameterCount(); i++) types.add(pmd.getParameterTypeName(i));
      out.put("parameter_types", types);
      if (pmd.getParameterCount() > 0) {
        if (param == null) {
          ps.setNull(1, java.sql.Types.NULL);
        } else {
          ps.setLong(1, param);
        }
      }
      try (ResultSet rs = ps.executeQuery()) {
        out.put("answer", readAll(rs));
      } catch (Exception e) {
        out.put("answer", error(e));
      }
    }
    return out;
  }

  static Map<String, Object> stream(Connection conn, String sql, long block) throws Exception {
    List<Object> blocks = new ArrayList<>();
    try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(sql)) {
      while (rs.next()) {
        long b = rs.getLong("block_num");
        blocks.add(b);
        if (b >= block) break;
      }
      st.cancel();
    }
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("blocks", blocks);
    return out;
  }

  // ---- a small JSON writer (the JDK has none) ------------------------------------------
  static String json(Object v) {
    StringBuilder sb = new StringBuilder();
    write(sb, v);
    return sb.toString();
  }

  @SuppressWarnings("unchecked")
  static void write(StringBuilder sb, Object v) {
    if (v == null) {
      sb.append("null");
    } else if (v instanceof Map) {
      sb.append('{');
      boolean first = true;
      for (Map.Entry<String, Object> e : ((Map<String, Object>) v).entrySet()) {
        if (!first) sb.append(',');
        first = false;
        write(sb, e.getKey());
        sb.append(':');
        write(sb, e.getValue());
      }
      sb.append('}');
    } else if (v instanceof List) {
      sb.append('[');
      boolean first = true;
      for (Object o : (List<Object>) v) {
        if (!first) sb.append(',');
        first = false;
        write(sb, o);
      }
      sb.append(']');
    } else if (v instanceof Boolean || v instanceof Integer || v instanceof Long) {
      sb.append(v);
    } else {
      String s = v.toString();
      sb.append('"');
      for (char c : s.toCharArray()) {
        if (c == '"' || c == '\\') {
          sb.append('\\').append(c);
        } else if (c < 0x20) {
          sb.append(String.format("\\u%04x", (int) c));
        } else {
          sb.append(c);
        }
      }
      sb.append('"');
    }
  }
}
