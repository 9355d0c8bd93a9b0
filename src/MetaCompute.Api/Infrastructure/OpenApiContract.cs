using System.Globalization;
using System.Reflection;
using System.Text.Json;
using FluentValidation;
using FluentValidation.Validators;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.OpenApi;

namespace MetaCompute.Api.Infrastructure;

/// <summary>Endpoint metadata: a request header the operation reads, for the OpenAPI document.</summary>
public sealed record TakesHeader(string Name, bool Required, int MaxLength, string Description);

/// <summary>Endpoint metadata: a header the operation's answers with <paramref name="Status"/> carry.</summary>
public sealed record AnswersHeader(int Status, string Name, string Description);

/// <summary>
/// What the framework cannot infer, written into the document so that it says what the API does: the headers each
/// operation takes and answers with, the problem extensions, the 500 and 503 every operation can answer, query
/// parameters by the names the API uses, node ids as the strings every answer shows, money as decimal strings, and the
/// bounds of every input: those its validator states, else those every request obeys (<see cref="InputBounds"/>).
/// </summary>
public static class OpenApiContract
{
    private const string ProblemSchema = "ProblemDetails";

    public static readonly AnswersHeader RetryAfter = new(0, "Retry-After", "Seconds to wait before retrying.");

    public static readonly AnswersHeader Location = new(0, "Location", "Where the created resource is.");

    public static void Apply(OpenApiOptions options)
    {
        options.AddOperationTransformer((operation, context, _) =>
        {
            var metadata = context.Description.ActionDescriptor.EndpointMetadata;
            operation.Parameters ??= [];
            foreach (var parameter in operation.Parameters.OfType<OpenApiParameter>())
            {
                if (parameter.In == ParameterLocation.Query && parameter.Name is { Length: > 0 } name)
                {
                    if (parameter.Schema is OpenApiSchema querySchema)
                    {
                        Bound(querySchema, ValidatorRules(context.ApplicationServices, QueryRecord(metadata), name));
                    }

                    parameter.Name = JsonNamingPolicy.CamelCase.ConvertName(name);
                }

                if (parameter.In == ParameterLocation.Path && parameter.Schema is OpenApiSchema pathSchema && parameter.Name != "nodeId")
                {
                    Bound(pathSchema, []);
                }

                // Node ids are integers in the route but strings in every answer (ids are opaque); the path says the same.
                if (parameter.In == ParameterLocation.Path && parameter.Name == "nodeId")
                {
                    parameter.Schema = new OpenApiSchema { Type = JsonSchemaType.String, Pattern = "^[0-9]{1,9}$", MaxLength = 9 };
                }
            }

            foreach (var header in metadata.OfType<TakesHeader>())
            {
                operation.Parameters.Add(new OpenApiParameter
                {
                    Name = header.Name, In = ParameterLocation.Header, Required = header.Required, Description = header.Description,
                    Schema = new OpenApiSchema { Type = JsonSchemaType.String, MinLength = 1, MaxLength = header.MaxLength, Pattern = "^[\\x21-\\x7E]+$" },
                });
            }

            operation.Responses ??= new OpenApiResponses();
            AddProblem(operation, context, StatusCodes.Status500InternalServerError, "An error on the service's side; the trace id identifies it.");
            AddProblem(operation, context, StatusCodes.Status503ServiceUnavailable,
                "The database was unreachable, restarting or failing over after the service's own retries; retry after Retry-After.");
            foreach (var (status, response) in operation.Responses)
            {
                if (response is not OpenApiResponse concrete)
                {
                    continue;
                }

                var code = int.TryParse(status, out var parsed) ? parsed : 0;
                var headers = metadata.OfType<AnswersHeader>().Where(h => h.Status == code).ToList();
                if (code is StatusCodes.Status429TooManyRequests or StatusCodes.Status503ServiceUnavailable)
                {
                    headers.Add(RetryAfter);
                }

                if (code == StatusCodes.Status201Created)
                {
                    headers.Add(Location);
                }

                foreach (var header in headers)
                {
                    concrete.Headers ??= new Dictionary<string, IOpenApiHeader>();
                    concrete.Headers[header.Name] = new OpenApiHeader
                    {
                        Description = header.Description,
                        Schema = header.Name == RetryAfter.Name
                            ? new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32", Minimum = "1", Maximum = "86400" }
                            : new OpenApiSchema { Type = JsonSchemaType.String, MaxLength = header.Name == Location.Name ? 2048 : 64 },
                    };
                }
            }

            return Task.CompletedTask;
        });

        options.AddSchemaTransformer((schema, context, _) =>
        {
            if (context.JsonPropertyInfo is { } property && property.AttributeProvider is MemberInfo member)
            {
                Bound(schema, ValidatorRules(context.ApplicationServices, property.DeclaringType, member.Name));
            }

            if (context.JsonTypeInfo.Type == typeof(decimal))
            {
                schema.Type = JsonSchemaType.String;
                schema.Format = "decimal";
                schema.Pattern = MoneyJsonConverter.Pattern;
                schema.MaxLength = 20;
                schema.Description = "An exact decimal amount (docs/decisions/0006-money-on-the-wire.md).";
            }

            if (context.JsonTypeInfo.Type == typeof(Microsoft.AspNetCore.Mvc.ProblemDetails)
                || context.JsonTypeInfo.Type == typeof(Microsoft.AspNetCore.Http.HttpValidationProblemDetails))
            {
                DescribeExtensions(schema);
            }

            return Task.CompletedTask;
        });
    }

    /// <summary>The longest any page is (<see cref="Paging.MaxLimit"/>); arrays the API answers are no longer.</summary>
    public const int MaxItems = Paging.MaxLimit;

    /// <summary>
    /// Writes bounds into a schema: those the validator's rules state, then, where none is stated, those every request
    /// obeys: text up to <see cref="InputBounds.MaxTextLength"/> characters (a time, up to 40), 32-bit integers, and
    /// arrays no longer than a page.
    /// </summary>
    private static void Bound(OpenApiSchema schema, IEnumerable<IPropertyValidator> rules)
    {
        foreach (var rule in rules)
        {
            switch (rule)
            {
                case IBetweenValidator between:
                    schema.Minimum = Number(between.From);
                    schema.Maximum = Number(between.To);
                    break;
                case ILengthValidator length:
                    schema.MaxLength = length.Max > 0 ? length.Max : schema.MaxLength;
                    schema.MinLength = length.Min > 0 ? length.Min : schema.MinLength;
                    break;
                case IComparisonValidator { ValueToCompare: not null } comparison when IsNumber(comparison.ValueToCompare):
                    var value = Convert.ToDecimal(comparison.ValueToCompare, CultureInfo.InvariantCulture);
                    switch (comparison.Comparison)
                    {
                        case Comparison.GreaterThan:
                            schema.Minimum = Number(value + 1);
                            break;
                        case Comparison.GreaterThanOrEqual:
                            schema.Minimum = Number(value);
                            break;
                        case Comparison.LessThan:
                            schema.Maximum = Number(value - 1);
                            break;
                        case Comparison.LessThanOrEqual:
                            schema.Maximum = Number(value);
                            break;
                    }

                    break;
            }
        }

        var type = schema.Type ?? 0;
        if (type.HasFlag(JsonSchemaType.String) && schema.Enum is not { Count: > 0 } && schema.MaxLength is null)
        {
            schema.MaxLength = schema.Format == "date-time" ? 40 : InputBounds.MaxTextLength;
        }

        if (type.HasFlag(JsonSchemaType.Integer))
        {
            schema.Minimum ??= schema.Format == "int64" ? long.MinValue.ToString(CultureInfo.InvariantCulture) : int.MinValue.ToString(CultureInfo.InvariantCulture);
            schema.Maximum ??= schema.Format == "int64" ? long.MaxValue.ToString(CultureInfo.InvariantCulture) : int.MaxValue.ToString(CultureInfo.InvariantCulture);
        }

        if (type.HasFlag(JsonSchemaType.Array))
        {
            schema.MaxItems ??= MaxItems;
            if (schema.Items is OpenApiSchema items)
            {
                Bound(items, []);
            }
        }
    }

    private static bool IsNumber(object value) => value is int or long or short or decimal or double;

    private static string Number(object value) => Convert.ToDecimal(value, CultureInfo.InvariantCulture).ToString(CultureInfo.InvariantCulture);

    /// <summary>The property validators the validator of <paramref name="type"/> (if any) runs on <paramref name="member"/>.</summary>
    private static IEnumerable<IPropertyValidator> ValidatorRules(IServiceProvider services, Type? type, string member)
    {
        if (type is null || services.GetService(typeof(IValidator<>).MakeGenericType(type)) is not IValidator validator)
        {
            return [];
        }

        var descriptor = validator.CreateDescriptor();
        var name = descriptor.GetMembersWithValidators().Select(g => g.Key).FirstOrDefault(k => string.Equals(k, member, StringComparison.OrdinalIgnoreCase));
        return name is null ? [] : descriptor.GetRulesForMember(name).SelectMany(r => r.Components).Select(c => c.Validator).ToList();
    }

    /// <summary>The record a handler binds its query string to (<c>[AsParameters]</c>), whose validator bounds the parameters.</summary>
    private static Type? QueryRecord(IList<object> metadata) => metadata.OfType<MethodInfo>().FirstOrDefault()?.GetParameters()
        .FirstOrDefault(p => p.GetCustomAttribute<AsParametersAttribute>() is not null)?.ParameterType;

    private static void AddProblem(OpenApiOperation operation, OpenApiOperationTransformerContext context, int status, string description)
    {
        var key = status.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (operation.Responses!.ContainsKey(key))
        {
            return;
        }

        operation.Responses[key] = new OpenApiResponse
        {
            Description = description,
            Content = new Dictionary<string, OpenApiMediaType>
            {
                ["application/problem+json"] = new() { Schema = new OpenApiSchemaReference(ProblemSchema, context.Document) },
            },
        };
    }

    /// <summary>The members a problem may carry beside RFC 9457's own, by the problem types that use them.</summary>
    private static void DescribeExtensions(OpenApiSchema schema)
    {
        schema.Properties ??= new Dictionary<string, IOpenApiSchema>();
        void Add(string name, OpenApiSchema property) => schema.Properties[name] = property;
        Add("traceId", new OpenApiSchema { Type = JsonSchemaType.String, MaxLength = 64, Description = "Identifies the request in the service's logs and traces." });
        Add("errors", new OpenApiSchema
        {
            Type = JsonSchemaType.Object, Description = "validation-failed, idempotency-key-missing: each field or header at fault, with its messages.",
            AdditionalProperties = new OpenApiSchema { Type = JsonSchemaType.Array, MaxItems = 20, Items = new OpenApiSchema { Type = JsonSchemaType.String, MaxLength = 1000 } },
        });
        Add("alternatives", new OpenApiSchema
        {
            Type = JsonSchemaType.Array, MaxItems = 3, Description = "insufficient-capacity: up to three offerings that can be booked instead.",
            Items = new OpenApiSchema { Type = JsonSchemaType.Object, Description = "An offering, as GET /v1/offerings answers it." },
        });
        Add("reason", new OpenApiSchema { Type = JsonSchemaType.String, MaxLength = 200, Description = "insufficient-capacity: why the placement failed." });
        Add("quota", new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32", Minimum = "0", Maximum = "1000000", Description = "quota-exceeded: the tenant's max concurrent GPUs in the pool." });
        Add("requestedPeak", new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32", Minimum = "0", Maximum = "2000000", Description = "quota-exceeded: the concurrent GPUs the request would have reached." });
        Add("maxAdditionalHours", new OpenApiSchema { Type = JsonSchemaType.Integer, Format = "int32", Minimum = "0", Maximum = "8784", Description = "extension-not-possible: the longest extension possible on the same GPUs." });
        Add("leases", new OpenApiSchema
        {
            Type = JsonSchemaType.Array, MaxItems = 512, Description = "maintenance-conflict: the leases that cannot move out of the window.",
            Items = new OpenApiSchema { Type = JsonSchemaType.Object },
        });
    }
}
