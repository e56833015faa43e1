// sluice-go-client: the Go Flight SQL client of arrow-go (github.com/apache/arrow-go/v18,
// package arrow/flight/flightsql) driven against a sluice server by
// tests/python/test_client_go.py. Built once by scripts/install_clients.sh and cached.
//
// Usage: sluice-go-client -addr HOST:PORT [-key KEY] COMMAND [ARGS]
//
//	query SQL FILE        Execute + DoGet of every endpoint; the record batches as an Arrow IPC file
//	prepared SQL FILE [I] Prepare (+ bind one int64 parameter I), GetSchema, Execute, DoGet
//	error SQL             Execute + DoGet; prints the error the client sees
//	metadata              GetSqlInfo, GetXdbcTypeInfo, keys, GetSchema of commands, PollFlightInfo
//	cancel SQL            DoGet in the background, CancelFlightInfo, and how the DoGet ended
//	handshake SQL         a Handshake without any credential; then SQL with the token it gave
//
// With -key the client handshakes (AuthenticateBasicToken, user "") and sends the bearer
// token it gets on every later call. Every command prints one JSON object on stdout; a
// failure prints {"error": "...", "code": "..."} and exits 0, so the test reads both.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/flight"
	"github.com/apache/arrow-go/v18/arrow/flight/flightsql"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

type result map[string]any

func errResult(err error) result {
	return result{"error": err.Error(), "code": status.Code(err).String(), "message": status.Convert(err).Message()}
}

func main() {
	addr := flag.String("addr", "", "sluice Flight address host:port")
	key := flag.String("key", "", "API key: handshake with Basic auth, then send the bearer token")
	flag.Parse()
	args := flag.Args()
	if *addr == "" || len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: sluice-go-client -addr HOST:PORT [-key KEY] COMMAND [ARGS]")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	client, err := flightsql.NewClient(*addr, nil, nil, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		emit(errResult(err))
		return
	}
	defer client.Close()
	if *key != "" {
		ctx, err = client.Client.AuthenticateBasicToken(ctx, "", *key)
		if err != nil {
			emit(errResult(err))
			return
		}
	}
	var out result
	switch args[0] {
	case "query":
		out = runQuery(ctx, client, args[1], args[2])
	case "prepared":
		out = runPrepared(ctx, client, args[1:])
	case "error":
		out = runQuery(ctx, client, args[1], "")
	case "metadata":
		out = runMetadata(ctx, client)
	case "cancel":
		out = runCancel(ctx, client, args[1])
	case "handshake":
		out = runHandshake(ctx, client, args[1])
	default:
		fmt.Fprintln(os.Stderr, "unknown command", args[0])
		os.Exit(2)
	}
	emit(out)
}

func emit(r result) {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))
}

// readAll reads every endpoint of info into record batches (retained).
func readAll(ctx context.Context, client *flightsql.Client, info *flight.FlightInfo) (*arrow.Schema, []arrow.RecordBatch, error) {
	var schema *arrow.Schema
	var batches []arrow.RecordBatch
	for _, ep := range info.Endpoint {
		rdr, err := client.DoGet(ctx, ep.Ticket)
		if err != nil {
			return nil, nil, err
		}
		schema = rdr.Schema()
		for rdr.Next() {
			rec := rdr.RecordBatch()
			rec.Retain()
			batches = append(batches, rec)
		}
		err = rdr.Err()
		rdr.Release()
		if err != nil {
			return nil, nil, err
		}
	}
	return schema, batches, nil
}

func writeIPC(path string, schema *arrow.Schema, batches []arrow.RecordBatch) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := ipc.NewFileWriter(f, ipc.WithSchema(schema), ipc.WithAllocator(memory.DefaultAllocator))
	if err != nil {
		return err
	}
	for _, b := range batches {
		if err := w.Write(b); err != nil {
			return err
		}
	}
	return w.Close()
}

func runQuery(ctx context.Context, client *flightsql.Client, sql, path string) result {
	info, err := client.Execute(ctx, sql)
	if err != nil {
		return errResult(err)
	}
	schema, batches, err := readAll(ctx, client, info)
	if err != nil {
		return errResult(err)
	}
	rows := int64(0)
	for _, b := range batches {
		rows += b.NumRows()
	}
	if path != "" {
		if err := writeIPC(path, schema, batches); err != nil {
			return errResult(err)
		}
	}
	return result{"rows": rows, "schema": schema.String()}
}

func runPrepared(ctx context.Context, client *flightsql.Client, args []string) result {
	sql, path := args[0], args[1]
	stmt, err := client.Prepare(ctx, sql)
	if err != nil {
		return errResult(err)
	}
	defer stmt.Close(ctx)
	out := result{}
	if ps := stmt.ParameterSchema(); ps != nil {
		out["parameter_fields"] = len(ps.Fields())
	} else {
		out["parameter_fields"] = nil
	}
	if len(args) > 2 {
		var v int64
		if _, err := fmt.Sscan(args[2], &v); err != nil {
			return errResult(err)
		}
		b := array.NewInt64Builder(memory.DefaultAllocator)
		b.Append(v)
		col := b.NewArray()
		params := array.NewRecordBatch(arrow.NewSchema([]arrow.Field{{Name: "0", Type: arrow.PrimitiveTypes.Int64}}, nil), []arrow.Array{col}, 1)
		stmt.SetParameters(params)
	}
	sr, err := stmt.GetSchema(ctx)
	if err != nil {
		out["get_schema_error"] = errResult(err)
	} else {
		s, err := flight.DeserializeSchema(sr.GetSchema(), memory.DefaultAllocator)
		if err != nil {
			return errResult(err)
		}
		out["get_schema"] = s.String()
	}
	info, err := stmt.Execute(ctx)
	if err != nil {
		out["execute_error"] = errResult(err)
		return out
	}
	schema, batches, err := readAll(ctx, client, info)
	if err != nil {
		out["execute_error"] = errResult(err)
		return out
	}
	if err := writeIPC(path, schema, batches); err != nil {
		return errResult(err)
	}
	out["schema"] = schema.String()
	return out
}

// jsonValue renders one value of a GetSqlInfo dense union (or any array) for the test.
func jsonValue(arr arrow.Array, i int) any {
	if arr.IsNull(i) {
		return nil
	}
	switch a := arr.(type) {
	case *array.String:
		return a.Value(i)
	case *array.Boolean:
		return a.Value(i)
	case *array.Int64:
		return a.Value(i)
	case *array.Int32:
		return a.Value(i)
	case *array.Uint8:
		return a.Value(i)
	case *array.Uint32:
		return a.Value(i)
	case *array.List:
		start, end := a.ValueOffsets(i)
		out := []any{}
		for j := start; j < end; j++ {
			out = append(out, jsonValue(a.ListValues(), int(j)))
		}
		return out
	case *array.Map:
		start, end := a.ValueOffsets(i)
		out := map[string]any{}
		for j := start; j < end; j++ {
			out[fmt.Sprint(jsonValue(a.Keys(), int(j)))] = jsonValue(a.Items(), int(j))
		}
		return out
	case *array.DenseUnion:
		child := a.Field(a.ChildID(i))
		return jsonValue(child, int(a.ValueOffset(i)))
	default:
		return a.ValueStr(i)
	}
}

// table reads a metadata command's answer: schema and rows as JSON objects.
func table(ctx context.Context, client *flightsql.Client, info *flight.FlightInfo, err error) result {
	if err != nil {
		return errResult(err)
	}
	infoSchema, err := flight.DeserializeSchema(info.Schema, memory.DefaultAllocator)
	if err != nil {
		return errResult(err)
	}
	schema, batches, err := readAll(ctx, client, info)
	if err != nil {
		return errResult(err)
	}
	rows := []map[string]any{}
	unionTypes := []int8{}
	for _, b := range batches {
		for i := 0; i < int(b.NumRows()); i++ {
			row := map[string]any{}
			for c, f := range b.Schema().Fields() {
				row[f.Name] = jsonValue(b.Column(c), i)
				if u, ok := b.Column(c).(*array.DenseUnion); ok {
					unionTypes = append(unionTypes, int8(u.TypeCode(i)))
				}
			}
			rows = append(rows, row)
		}
	}
	out := result{"schema": schema.String(), "info_schema": infoSchema.String(), "rows": rows}
	if len(unionTypes) > 0 {
		out["type_codes"] = unionTypes
	}
	return out
}

func schemaOf(sr *flight.SchemaResult, err error) any {
	if err != nil {
		return errResult(err)
	}
	s, err := flight.DeserializeSchema(sr.GetSchema(), memory.DefaultAllocator)
	if err != nil {
		return errResult(err)
	}
	return s.String()
}

func runMetadata(ctx context.Context, client *flightsql.Client) result {
	out := result{}
	info, err := client.GetSqlInfo(ctx, nil)
	out["sql_info_all"] = table(ctx, client, info, err)
	info, err = client.GetSqlInfo(ctx, []flightsql.SqlInfo{flightsql.SqlInfoFlightSqlServerName, 522, 517, 508})
	out["sql_info_some"] = table(ctx, client, info, err)
	info, err = client.GetXdbcTypeInfo(ctx, nil)
	out["xdbc_type_info"] = table(ctx, client, info, err)
	bigint := int32(-5)
	info, err = client.GetXdbcTypeInfo(ctx, &bigint)
	out["xdbc_type_info_bigint"] = table(ctx, client, info, err)
	schema := "eth_rpc"
	ref := flightsql.TableRef{DBSchema: &schema, Table: "blocks"}
	info, err = client.GetPrimaryKeys(ctx, ref)
	out["primary_keys"] = table(ctx, client, info, err)
	info, err = client.GetImportedKeys(ctx, ref)
	out["imported_keys"] = table(ctx, client, info, err)
	info, err = client.GetExportedKeys(ctx, ref)
	out["exported_keys"] = table(ctx, client, info, err)
	info, err = client.GetCrossReference(ctx, ref, flightsql.TableRef{DBSchema: &schema, Table: "transactions"})
	out["cross_reference"] = table(ctx, client, info, err)
	out["schemas"] = result{
		"execute":         schemaOf(client.GetExecuteSchema(ctx, "SELECT block_num, hash FROM eth_rpc.blocks")),
		"execute_error":   schemaOf(client.GetExecuteSchema(ctx, "SELECT nope FROM eth_rpc.blocks")),
		"catalogs":        schemaOf(client.GetCatalogsSchema(ctx)),
		"db_schemas":      schemaOf(client.GetDBSchemasSchema(ctx)),
		"tables":          schemaOf(client.GetTablesSchema(ctx, &flightsql.GetTablesOpts{IncludeSchema: true})),
		"table_types":     schemaOf(client.GetTableTypesSchema(ctx)),
		"sql_info":        schemaOf(client.GetSqlInfoSchema(ctx)),
		"xdbc_type_info":  schemaOf(client.GetXdbcTypeInfoSchema(ctx)),
		"primary_keys":    schemaOf(client.GetPrimaryKeysSchema(ctx)),
		"imported_keys":   schemaOf(client.GetImportedKeysSchema(ctx)),
		"exported_keys":   schemaOf(client.GetExportedKeysSchema(ctx)),
		"cross_reference": schemaOf(client.GetCrossReferenceSchema(ctx)),
	}
	poll, err := client.ExecutePoll(ctx, "SELECT count(*) AS n FROM eth_rpc.blocks", nil)
	if err != nil {
		out["poll"] = errResult(err)
	} else {
		p := result{"finished": poll.GetFlightDescriptor() == nil, "has_info": poll.GetInfo() != nil}
		if poll.Progress != nil {
			p["progress"] = *poll.Progress
		}
		if poll.GetInfo() != nil {
			p["answer"] = table(ctx, client, poll.GetInfo(), nil)
		}
		out["poll"] = p
	}
	return out
}

func runCancel(ctx context.Context, client *flightsql.Client, sql string) result {
	info, err := client.Execute(ctx, sql)
	if err != nil {
		return errResult(err)
	}
	done := make(chan error, 1)
	started := time.Now()
	go func() {
		_, _, err := readAll(ctx, client, info)
		done <- err
	}()
	time.Sleep(500 * time.Millisecond) // the query is running by now
	out := result{}
	res, err := client.CancelFlightInfo(ctx, &flight.CancelFlightInfoRequest{Info: info})
	if err != nil {
		out["cancel_error"] = errResult(err)
	} else {
		out["cancel_status"] = res.GetStatus().String()
	}
	select {
	case err := <-done:
		out["seconds"] = time.Since(started).Seconds()
		if err == nil {
			out["doget"] = "ok"
		} else {
			out["doget"] = errResult(err)
		}
	case <-time.After(30 * time.Second):
		out["doget"] = errResult(errors.New("DoGet still running 30 s after CancelFlightInfo"))
	}
	return out
}

// runHandshake calls Handshake with no credential at all and runs `sql` with the
// `authorization` header the answer carries.
func runHandshake(ctx context.Context, client *flightsql.Client, sql string) result {
	stream, err := client.Client.Handshake(ctx)
	if err != nil {
		return errResult(err)
	}
	if err := stream.CloseSend(); err != nil {
		return errResult(err)
	}
	header, err := stream.Header()
	if err != nil {
		return errResult(err)
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if err != io.EOF {
				return errResult(err)
			}
			break
		}
	}
	md := metadata.Join(header, stream.Trailer())
	tokens := md.Get("authorization")
	out := result{"authorization": tokens}
	if len(tokens) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", tokens[0])
	}
	out["query"] = runQuery(ctx, client, sql, "")
	return out
}
