using Microsoft.AspNetCore.Http.HttpResults;

namespace MetaCompute.Api.Infrastructure;

/// <summary>One stable <c>type</c> URI per error kind (RFC 9457) and helpers that build the answers.</summary>
public static class Problems
{
    public const string BaseUri = "https://metacompute.dev/problems/";

    public const string NotFoundType = BaseUri + "not-found";
    public const string ValidationFailedType = BaseUri + "validation-failed";
    public const string MalformedRequestType = BaseUri + "malformed-request";
    public const string UnauthenticatedType = BaseUri + "unauthenticated";
    public const string ForbiddenType = BaseUri + "forbidden";
    public const string MethodNotAllowedType = BaseUri + "method-not-allowed";
    public const string UnsupportedMediaTypeType = BaseUri + "unsupported-media-type";
    public const string PayloadTooLargeType = BaseUri + "payload-too-large";
    public const string UriTooLongType = BaseUri + "uri-too-long";
    public const string HeadersTooLargeType = BaseUri + "headers-too-large";
    public const string RateLimitedType = BaseUri + "rate-limited";
    public const string ConflictType = BaseUri + "conflict";
    public const string PreconditionFailedType = BaseUri + "precondition-failed";
    public const string TemporarilyUnavailableType = BaseUri + "temporarily-unavailable";
    public const string InternalErrorType = BaseUri + "internal-error";

    /// <summary>The type for a bare status code, used when the framework answers without a body of its own.</summary>
    public static string TypeFor(int status) => status switch
    {
        StatusCodes.Status400BadRequest => MalformedRequestType,
        StatusCodes.Status401Unauthorized => UnauthenticatedType,
        StatusCodes.Status403Forbidden => ForbiddenType,
        StatusCodes.Status404NotFound => NotFoundType,
        StatusCodes.Status405MethodNotAllowed => MethodNotAllowedType,
        StatusCodes.Status409Conflict => ConflictType,
        StatusCodes.Status412PreconditionFailed => PreconditionFailedType,
        StatusCodes.Status413PayloadTooLarge => PayloadTooLargeType,
        StatusCodes.Status414UriTooLong => UriTooLongType,
        StatusCodes.Status431RequestHeaderFieldsTooLarge => HeadersTooLargeType,
        StatusCodes.Status415UnsupportedMediaType => UnsupportedMediaTypeType,
        StatusCodes.Status429TooManyRequests => RateLimitedType,
        StatusCodes.Status503ServiceUnavailable => TemporarilyUnavailableType,
        _ => InternalErrorType,
    };

    public static ProblemHttpResult NotFound(string what) =>
        TypedResults.Problem(title: "Not found", detail: $"{what} was not found.", statusCode: StatusCodes.Status404NotFound, type: NotFoundType);

    /// <summary>A 400 naming one field, for checks that need data (a page token, an id) rather than shape.</summary>
    public static ValidationProblem Invalid(string field, string message) =>
        TypedResults.ValidationProblem(new Dictionary<string, string[]> { [field] = [message] },
            title: "The request is not valid.", type: ValidationFailedType);
}
