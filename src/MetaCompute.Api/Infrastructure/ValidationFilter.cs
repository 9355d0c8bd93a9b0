using System.Collections.Concurrent;
using FluentValidation;

namespace MetaCompute.Api.Infrastructure;

/// <summary>
/// Checks the bounds every request obeys (<see cref="InputBounds"/>), then every handler argument that has a
/// FluentValidation validator, before the handler runs, and answers a 400 listing each field at fault. Validators check
/// shape only; invariants belong to the database.
/// </summary>
public sealed class ValidationFilter : IEndpointFilter
{
    private static readonly ConcurrentDictionary<Type, Type> ValidatorTypes = new();

    public async ValueTask<object?> InvokeAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        if (InputBounds.Check(context.HttpContext.Request, context.Arguments) is { Count: > 0 } outOfBounds)
        {
            return TypedResults.ValidationProblem(outOfBounds, title: "The request is not valid.", type: Problems.ValidationFailedType);
        }

        foreach (var argument in context.Arguments)
        {
            if (argument is null)
            {
                continue;
            }

            var validatorType = ValidatorTypes.GetOrAdd(argument.GetType(), type => typeof(IValidator<>).MakeGenericType(type));
            if (context.HttpContext.RequestServices.GetService(validatorType) is not IValidator validator)
            {
                continue;
            }

            var result = await validator.ValidateAsync(new ValidationContext<object>(argument), context.HttpContext.RequestAborted);
            if (!result.IsValid)
            {
                return TypedResults.ValidationProblem(
                    result.ToDictionary(),
                    title: "The request is not valid.",
                    type: Problems.ValidationFailedType);
            }
        }

        return await next(context);
    }
}
